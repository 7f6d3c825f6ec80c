using System.Globalization;
using System.Text;

namespace LoRA.Managed.Cli;

/// <summary>
/// A loss-per-step chart as a self-contained SVG: the base phase then the LoRA phase on one step axis,
/// log-scaled loss, each series smoothed by a moving average (raw per-step losses are noisy).
/// </summary>
internal static class LossCurve
{
    private const int Width = 900, Height = 420, Left = 70, Right = 20, Top = 40, Bottom = 50;

    public static string Svg(IReadOnlyList<float> baseLosses, IReadOnlyList<float> loraLosses)
    {
        int total = Math.Max(1, baseLosses.Count + loraLosses.Count);
        var all = baseLosses.Concat(loraLosses).Where(v => float.IsFinite(v) && v > 0).DefaultIfEmpty(1f).ToArray();
        double lo = Math.Log10(Math.Max(1e-4, all.Min())), hi = Math.Log10(Math.Max(all.Max(), 1e-3));
        if (hi - lo < 0.5) { lo -= 0.25; hi += 0.25; }
        double X(int step) => Left + (Width - Left - Right) * (double)step / total;
        double Y(double loss) => Top + (Height - Top - Bottom) * (hi - Math.Log10(Math.Max(loss, 1e-4))) / (hi - lo);

        var svg = new StringBuilder();
        svg.Append(CultureInfo.InvariantCulture,
            $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{Width}\" height=\"{Height}\" " +
            $"font-family=\"sans-serif\" font-size=\"12\">\n");
        svg.Append(CultureInfo.InvariantCulture, $"<rect width=\"{Width}\" height=\"{Height}\" fill=\"white\"/>\n");
        svg.Append(CultureInfo.InvariantCulture,
            $"<text x=\"{Width / 2}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">Training loss per step " +
            $"(cross-entropy, log scale, moving average)</text>\n");
        for (int e = (int)Math.Ceiling(lo); e <= (int)Math.Floor(hi); e++)
        {
            double y = Y(Math.Pow(10, e));
            svg.Append(CultureInfo.InvariantCulture,
                $"<line x1=\"{Left}\" x2=\"{Width - Right}\" y1=\"{y:F1}\" y2=\"{y:F1}\" stroke=\"#ddd\"/>");
            svg.Append(CultureInfo.InvariantCulture,
                $"<text x=\"{Left - 6}\" y=\"{y + 4:F1}\" text-anchor=\"end\">{Math.Pow(10, e):G3}</text>\n");
        }
        svg.Append(CultureInfo.InvariantCulture,
            $"<line x1=\"{Left}\" x2=\"{Left}\" y1=\"{Top}\" y2=\"{Height - Bottom}\" stroke=\"black\"/>");
        svg.Append(CultureInfo.InvariantCulture,
            $"<line x1=\"{Left}\" x2=\"{Width - Right}\" y1=\"{Height - Bottom}\" y2=\"{Height - Bottom}\" " +
            $"stroke=\"black\"/>\n");
        svg.Append(CultureInfo.InvariantCulture,
            $"<text x=\"{(Left + Width - Right) / 2}\" y=\"{Height - 12}\" text-anchor=\"middle\">step " +
            $"({baseLosses.Count:N0} base on digits 0-7, then {loraLosses.Count:N0} LoRA on 8-9)</text>\n");
        if (loraLosses.Count > 0)
        {
            double xb = X(baseLosses.Count);
            svg.Append(CultureInfo.InvariantCulture,
                $"<line x1=\"{xb:F1}\" x2=\"{xb:F1}\" y1=\"{Top}\" y2=\"{Height - Bottom}\" stroke=\"#999\" " +
                $"stroke-dasharray=\"4 4\"/>\n");
        }
        Series(svg, baseLosses, 0, "#1f77b4", "base (0-7)", 0, X, Y);
        Series(svg, loraLosses, baseLosses.Count, "#d62728", "LoRA (8-9)", 1, X, Y);
        svg.Append("</svg>\n");
        return svg.ToString();
    }

    private static void Series(StringBuilder svg, IReadOnlyList<float> losses, int offset, string colour, string name,
        int legendRow,
        Func<int, double> x, Func<double, double> y)
    {
        if (losses.Count == 0) return;
        int window = Math.Max(1, losses.Count / 100);
        var points = new StringBuilder();
        double sum = 0;
        for (int i = 0; i < losses.Count; i++)
        {
            sum += losses[i];
            if (i >= window) sum -= losses[i - window];
            double mean = sum / Math.Min(i + 1, window);
            if (i % Math.Max(1, losses.Count / 400) == 0 || i == losses.Count - 1)
                points.Append(CultureInfo.InvariantCulture, $"{x(offset + i + 1):F1},{y(mean):F1} ");
        }
        svg.Append(CultureInfo.InvariantCulture,
            $"<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" " +
            $"points=\"{points.ToString().TrimEnd()}\"/>\n");
        int ly = Top + 14 + 16 * legendRow;
        svg.Append(CultureInfo.InvariantCulture,
            $"<line x1=\"{Width - 190}\" x2=\"{Width - 165}\" y1=\"{ly - 4}\" y2=\"{ly - 4}\" stroke=\"{colour}\" " +
            $"stroke-width=\"2\"/><text x=\"{Width - 160}\" y=\"{ly}\">{name}</text>\n");
    }
}
