using System.Diagnostics.CodeAnalysis;
using System.Numerics;

namespace LoRA.Managed.Data;

/// <summary>
/// A set of MNIST classes 0–9, written as on the command line: <c>0-7</c>, <c>8,9</c>, <c>0-9</c>,
/// or a mix such as <c>0-3,8</c>. Stored as a 10-bit mask.
/// </summary>
public readonly struct DigitSet : IEquatable<DigitSet>
{
    private readonly ushort _mask;

    private DigitSet(ushort mask) => _mask = mask;

    /// <summary>All ten digits.</summary>
    public static DigitSet All => new(0x3ff);

    /// <summary>The set of the given digits.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A digit is outside 0–9.</exception>
    public static DigitSet Of(params int[] digits)
    {
        ArgumentNullException.ThrowIfNull(digits);
        ushort mask = 0;
        foreach (int d in digits)
        {
            if (d is < 0 or > 9) throw new ArgumentOutOfRangeException(nameof(digits), d, "DigitSet: digits are 0–9.");
            mask |= (ushort)(1 << d);
        }
        return new DigitSet(mask);
    }

    /// <summary>Number of digits in the set.</summary>
    public int Count => BitOperations.PopCount(_mask);

    /// <summary>True for the empty set.</summary>
    public bool IsEmpty => _mask == 0;

    /// <summary>True when <paramref name="digit"/> is in the set (false for anything outside 0–9).</summary>
    public bool Contains(int digit) => digit is >= 0 and <= 9 && (_mask & (1 << digit)) != 0;

    /// <summary>The digits in increasing order.</summary>
    public int[] ToArray()
    {
        var result = new int[Count];
        for (int d = 0, i = 0; d <= 9; d++) if (Contains(d)) result[i++] = d;
        return result;
    }

    /// <summary>Parses <c>0-7</c>, <c>8,9</c>, <c>0-3,8</c>; spaces around items are allowed.</summary>
    /// <exception cref="FormatException">The text is empty, or an item is not a digit 0–9 or an increasing range of
    /// them.</exception>
    public static DigitSet Parse(string text)
    {
        if (!TryParse(text, out var set, out string? error)) throw new FormatException(error);
        return set;
    }

    /// <summary>Parses like <see cref="Parse"/>; on failure returns false and a message saying what is wrong.</summary>
    public static bool TryParse(string? text, out DigitSet set, [NotNullWhen(false)] out string? error)
    {
        set = default;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "digit set is empty; write e.g. 0-7, 8,9 or 0-9.";
            return false;
        }
        ushort mask = 0;
        foreach (string raw in text.Split(','))
        {
            string item = raw.Trim();
            int dash = item.IndexOf('-');
            if (dash < 0)
            {
                if (!TryDigit(item, out int d))
                {
                    error = $"digit set '{text}': '{item}' is not a digit 0–9 (write e.g. 0-7, 8,9 or 0-9).";
                    return false;
                }
                mask |= (ushort)(1 << d);
                continue;
            }
            string lo = item[..dash].Trim(), hi = item[(dash + 1)..].Trim();
            if (!TryDigit(lo, out int from) || !TryDigit(hi, out int to))
            {
                error = $"digit set '{text}': range '{item}' must be two digits 0–9 like 0-7.";
                return false;
            }
            if (from > to)
            {
                error = $"digit set '{text}': range '{item}' goes backwards; write {to}-{from}.";
                return false;
            }
            for (int d = from; d <= to; d++) mask |= (ushort)(1 << d);
        }
        set = new DigitSet(mask);
        error = null;
        return true;
    }

    private static bool TryDigit(string s, out int digit)
    {
        digit = s.Length == 1 && s[0] is >= '0' and <= '9' ? s[0] - '0' : -1;
        return digit >= 0;
    }

    /// <summary>The canonical text: maximal runs of three or more as ranges (<c>0-7</c>), others listed
    /// (<c>8,9</c>).</summary>
    public override string ToString()
    {
        var parts = new List<string>();
        int d = 0;
        while (d <= 9)
        {
            if (!Contains(d)) { d++; continue; }
            int end = d;
            while (end + 1 <= 9 && Contains(end + 1)) end++;
            if (end - d >= 2) parts.Add($"{d}-{end}");
            else for (int k = d; k <= end; k++)
                parts.Add(k.ToString(System.Globalization.CultureInfo.InvariantCulture));
            d = end + 1;
        }
        return string.Join(",", parts);
    }

    /// <inheritdoc />
    public bool Equals(DigitSet other) => _mask == other._mask;

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is DigitSet other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => _mask;

    /// <summary>Set equality.</summary>
    public static bool operator ==(DigitSet left, DigitSet right) => left.Equals(right);

    /// <summary>Set inequality.</summary>
    public static bool operator !=(DigitSet left, DigitSet right) => !left.Equals(right);
}
