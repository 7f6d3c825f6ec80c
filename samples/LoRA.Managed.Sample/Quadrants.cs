using LoRA.Managed.Tensors;

namespace LoRA.Managed.Sample;

/// <summary>
/// The sample's two tasks on points of the square [-1, 1]²: task A is the quadrant of the point (0: x≥0, y≥0;
/// 1: x&lt;0, y≥0; 2: x&lt;0, y&lt;0; 3: x≥0, y&lt;0), task B the quadrant of the point turned by 45°, so B's
/// boundaries are the diagonals. A base model learns A; a LoRA adapter moves it to B.
/// </summary>
internal static class Quadrants
{
    /// <summary>The four classes.</summary>
    public const int Classes = 4;

    /// <summary>Task A's label of (x, y).</summary>
    public static int LabelA(float x, float y) => y >= 0 ? (x >= 0 ? 0 : 1) : (x < 0 ? 2 : 3);

    /// <summary>Task B's label: task A's of (x, y) turned by 45° ((x−y, x+y) is that turn times √2).</summary>
    public static int LabelB(float x, float y) => LabelA(x - y, x + y);

    /// <summary><paramref name="count"/> uniform points (count×2), labelled by <paramref name="label"/>.</summary>
    public static (Tensor Points, int[] Labels) Draw(TorchGenerator generator, int count, Func<float, float, int> label)
    {
        Tensor points = generator.Rand(count, 2);
        Span<float> p = points.Data;
        for (int i = 0; i < p.Length; i++) p[i] = 2 * p[i] - 1;
        var labels = new int[count];
        for (int i = 0; i < count; i++) labels[i] = label(p[2 * i], p[2 * i + 1]);
        return (points, labels);
    }
}
