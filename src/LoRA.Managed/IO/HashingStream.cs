using System.Security.Cryptography;

namespace LoRA.Managed.IO;

/// <summary>
/// A forward-only stream over another that adds every byte read or written to a hash, and counts them
/// (<see cref="Position"/>): a file format checks its checksum in the same pass that reads it. Without a hash it only
/// counts (over <see cref="Stream.Null"/>, it measures what a writer would write).
/// </summary>
internal sealed class HashingStream(Stream inner, IncrementalHash? hash) : Stream
{
    private long _position;

    public override bool CanRead => inner.CanRead;
    public override bool CanWrite => inner.CanWrite;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();

    /// <summary>Bytes read or written so far.</summary>
    public override long Position
    {
        get => _position;
        set => throw new NotSupportedException();
    }

    public override int Read(Span<byte> buffer)
    {
        int n = inner.Read(buffer);
        hash?.AppendData(buffer[..n]);
        _position += n;
        return n;
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        inner.Write(buffer);
        hash?.AppendData(buffer);
        _position += buffer.Length;
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    /// <summary>Reads (and hashes) up to position <paramref name="end"/>.</summary>
    /// <exception cref="EndOfStreamException">The stream ends first.</exception>
    public void ReadTo(long end)
    {
        byte[] buffer = new byte[1 << 16];
        while (_position < end) ReadExactly(buffer, 0, (int)Math.Min(buffer.Length, end - _position));
    }

    public override void Flush() => inner.Flush();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
