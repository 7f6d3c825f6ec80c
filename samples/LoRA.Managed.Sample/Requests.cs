using System.Globalization;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Sample;

/// <summary>The request loop: a point "x y" per line in, both models' answers out; bad lines get an error.</summary>
internal static class Requests
{
    /// <summary>Answers until an empty line or the end of <paramref name="input"/>; returns the count.</summary>
    public static int Serve(Module baseModel, Module adapted, TextReader input, TextWriter output)
    {
        int answered = 0;
        while (input.ReadLine() is { Length: > 0 } line)
        {
            string[] parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length != 2 || !float.TryParse(parts[0], CultureInfo.InvariantCulture, out float px)
                || !float.TryParse(parts[1], CultureInfo.InvariantCulture, out float py))
            {
                output.WriteLine($"error: expected two numbers \"x y\", got \"{line}\"");
                continue;
            }
            var point = new Tensor([px, py], 1, 2);
            int a = Classifier.Predict(baseModel, point)[0], b = Classifier.Predict(adapted, point)[0];
            int wantA = Quadrants.LabelA(px, py), wantB = Quadrants.LabelB(px, py);
            output.WriteLine(FormattableString.Invariant(
                $"({px}, {py}): base {a}, adapted {b} (task A {wantA}, B {wantB})"));
            answered++;
        }
        return answered;
    }
}
