using System.Globalization;
using LoRA.Managed.Data;
using LoRA.Managed.Training;
using Spectre.Console;

namespace LoRA.Managed.Cli;

/// <summary>Prints an <see cref="EvaluationResult"/> (accuracy line and confusion table) and turns it into JSON
/// values.</summary>
internal static class EvaluationReport
{
    /// <summary>Accuracy, then a confusion table whose rows are the true digits in <paramref name="digits"/> and
    /// columns every predicted class.</summary>
    public static void Print(CliContext context, string title, EvaluationResult result, DigitSet digits)
    {
        context.Console.MarkupLine(CultureInfo.InvariantCulture, "{0}: accuracy [bold]{1:F4}[/] ({2:N0}/{3:N0})",
            Markup.Escape(title), result.Accuracy, result.Correct, result.Count);
        var table = new Table { Border = context.Border,
            Title = new TableTitle("confusion (row: true, column: predicted)") };
        table.AddColumn(new TableColumn("true").RightAligned());
        for (int p = 0; p < result.Classes; p++)
            table.AddColumn(new TableColumn(p.ToString(CultureInfo.InvariantCulture)).RightAligned());
        foreach (int t in digits.ToArray())
        {
            if (t >= result.Classes) continue;
            var cells = new List<string> { t.ToString(CultureInfo.InvariantCulture) };
            for (int p = 0; p < result.Classes; p++)
            {
                string n = result.Confusion[t, p].ToString(CultureInfo.InvariantCulture);
                cells.Add(p == t ? $"[bold]{n}[/]" : n);
            }
            table.AddRow(cells.ToArray());
        }
        context.Console.Write(table);
    }

    /// <summary>The JSON keys <c>accuracy</c>, <c>count</c>, <c>confusion</c> (rows: true class, columns:
    /// predicted).</summary>
    public static Dictionary<string, object?> ToJson(EvaluationResult result) => new()
    {
        ["accuracy"] = result.Accuracy,
        ["count"] = result.Count,
        ["confusion"] = result.ConfusionRows(),
    };
}
