using System.Globalization;
using System.Text;

namespace LoRA.Managed.Cli;

/// <summary>Two panels as one SVG: accuracy against rank (log₂ axis), and accuracy per initialisation (bars).</summary>
internal static class SweepPlot
{
    private const int Width = 900, Height = 380, PanelTop = 50, PanelBottom = 320;

    public static string Svg(IReadOnlyList<(int Rank, double Acc89, double Acc0To7)> ranks,
        IReadOnlyList<(string Init, double Acc89, double Acc0To7)> inits)
    {
        var s = new StringBuilder();
        s.Append(CultureInfo.InvariantCulture,
            $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{Width}\" height=\"{Height}\" " +
            $"font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"{Width}\" " +
            $"height=\"{Height}\" fill=\"white\"/>\n");
        double Y(double acc) => PanelBottom - (PanelBottom - PanelTop) * acc;
        foreach (int x0 in new[] { 60, 520 })
        {
            int x1 = x0 + (x0 == 60 ? 380 : 340);
            for (int t = 0; t <= 10; t += 2)
            {
                double y = Y(t / 10.0);
                s.Append(CultureInfo.InvariantCulture,
                    $"<line x1=\"{x0}\" x2=\"{x1}\" y1=\"{y:F1}\" y2=\"{y:F1}\" stroke=\"#ddd\"/><text " +
                    $"x=\"{x0 - 6}\" y=\"{y + 4:F1}\" text-anchor=\"end\">{t / 10.0:F1}</text>\n");
            }
            s.Append(CultureInfo.InvariantCulture,
                $"<line x1=\"{x0}\" x2=\"{x0}\" y1=\"{PanelTop}\" y2=\"{PanelBottom}\" stroke=\"black\"/><line " +
                $"x1=\"{x0}\" x2=\"{x1}\" y1=\"{PanelBottom}\" y2=\"{PanelBottom}\" stroke=\"black\"/>\n");
        }
        s.Append("<text x=\"250\" y=\"30\" text-anchor=\"middle\" font-size=\"14\">Accuracy after LoRA vs rank (SVD " +
            "init, layers.5)</text>\n");
        s.Append("<text x=\"690\" y=\"30\" text-anchor=\"middle\" font-size=\"14\">Accuracy after LoRA by " +
            "initialisation</text>\n");
        if (ranks.Count > 0)
        {
            double lo = Math.Log2(ranks.Min(r => r.Rank)), hi = Math.Max(lo + 1, Math.Log2(ranks.Max(r => r.Rank)));
            double X(int rank) => 80 + 340 * (Math.Log2(rank) - lo) / (hi - lo);
            foreach (var (name, colour, pick) in new (string, string,
                Func<(int Rank, double Acc89, double Acc0To7), double>)[]
                     { ("test 8-9", "#d62728", r => r.Acc89), ("test 0-7 (forgetting)", "#1f77b4", r => r.Acc0To7) })
            {
                string pts = string.Join(" ",
                    ranks.Select(r => string.Create(CultureInfo.InvariantCulture, $"{X(r.Rank):F1},{Y(pick(r)):F1}")));
                s.Append(CultureInfo.InvariantCulture,
                    $"<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{pts}\"/>\n");
                foreach (var r in ranks)
                    s.Append(CultureInfo.InvariantCulture,
                        $"<circle cx=\"{X(r.Rank):F1}\" cy=\"{Y(pick(r)):F1}\" r=\"3\" fill=\"{colour}\"/>\n");
            }
            foreach (var r in ranks)
                s.Append(CultureInfo.InvariantCulture,
                    $"<text x=\"{X(r.Rank):F1}\" y=\"{PanelBottom + 16}\" text-anchor=\"middle\">{r.Rank}</text>\n");
            s.Append(CultureInfo.InvariantCulture,
                $"<text x=\"250\" y=\"{PanelBottom + 34}\" text-anchor=\"middle\">rank r</text>\n");
        }
        for (int i = 0; i < inits.Count; i++)
        {
            double x = 540 + i * (320.0 / Math.Max(1, inits.Count));
            var (init, a89, a07) = inits[i];
            s.Append(CultureInfo.InvariantCulture,
                $"<rect x=\"{x:F1}\" y=\"{Y(a89):F1}\" width=\"30\" " +
                $"height=\"{PanelBottom - Y(a89):F1}\" fill=\"#d62728\"/>");
            s.Append(CultureInfo.InvariantCulture,
                $"<rect x=\"{x + 32:F1}\" y=\"{Y(a07):F1}\" width=\"30\" " +
                $"height=\"{PanelBottom - Y(a07):F1}\" fill=\"#1f77b4\"/>");
            s.Append(CultureInfo.InvariantCulture,
                $"<text x=\"{x + 31:F1}\" y=\"{PanelBottom + 16}\" text-anchor=\"middle\">{init}</text>\n");
        }
        s.Append("<rect x=\"70\" y=\"340\" width=\"12\" height=\"12\" fill=\"#d62728\"/><text x=\"88\" " +
            "y=\"351\">accuracy on test 8-9</text>");
        s.Append("<rect x=\"240\" y=\"340\" width=\"12\" height=\"12\" fill=\"#1f77b4\"/><text x=\"258\" " +
            "y=\"351\">accuracy on test 0-7 afterwards</text>\n</svg>\n");
        return s.ToString();
    }
}
