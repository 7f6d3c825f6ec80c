using LoRA.Managed.Data;

namespace LoRA.Managed.Tests.Data;

public class DigitSetTests
{
    [TestCase("0-7", new[] { 0, 1, 2, 3, 4, 5, 6, 7 }, "0-7")]
    [TestCase("8,9", new[] { 8, 9 }, "8,9")]
    [TestCase("0-9", new[] { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 }, "0-9")]
    [TestCase(" 0-3 , 8 ", new[] { 0, 1, 2, 3, 8 }, "0-3,8")]
    [TestCase("5", new[] { 5 }, "5")]
    [TestCase("9,1,1", new[] { 1, 9 }, "1,9")]
    [TestCase("4-4", new[] { 4 }, "4")]
    public void ParsesAndPrintsCanonically(string text, int[] digits, string canonical)
    {
        DigitSet set = DigitSet.Parse(text);
        Assert.That(set.ToArray(), Is.EqualTo(digits));
        Assert.That(set.Count, Is.EqualTo(digits.Length));
        Assert.That(set.ToString(), Is.EqualTo(canonical));
        Assert.That(DigitSet.Parse(set.ToString()), Is.EqualTo(set));
    }

    [TestCase("", "empty")]
    [TestCase("   ", "empty")]
    [TestCase("7-0", "backwards")]
    [TestCase("0-10", "range '0-10'")]
    [TestCase("a", "'a' is not a digit")]
    [TestCase("8,,9", "'' is not a digit")]
    [TestCase("12", "'12' is not a digit")]
    [TestCase("-3", "range '-3'")]
    public void RejectsWithAClearMessage(string text, string fragment)
    {
        var e = Assert.Throws<FormatException>(() => DigitSet.Parse(text))!;
        Assert.That(e.Message, Does.Contain(fragment));
    }

    [Test]
    public void ContainsOnlyItsDigits()
    {
        DigitSet set = DigitSet.Of(8, 9);
        Assert.That(Enumerable.Range(-1, 12).Where(set.Contains), Is.EqualTo(new[] { 8, 9 }));
        Assert.That(DigitSet.All.Count, Is.EqualTo(10));
        Assert.Throws<ArgumentOutOfRangeException>(() => DigitSet.Of(10));
    }
}
