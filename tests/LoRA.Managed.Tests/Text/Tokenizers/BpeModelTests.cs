using CsCheck;
using LoRA.Managed.Text.Tokenizers;

namespace LoRA.Managed.Tests.Text.Tokenizers;

/// <summary>
/// The BPE model's shortcut (cutting SentencePiece words before each ▁ so the word cache applies) held to the
/// plain whole-word merge, and the merge loop's tie rule.
/// </summary>
public class BpeModelTests
{
    [TestCase("llama2")]
    [TestCase("stories260K")]
    public void CuttingAtMetaspaceGivesTheWholeWordIds(string variant)
    {
        var fast = TokenizerFixtures.Tokenizer(variant).Definition.Model;
        Assert.That(fast.SplitsAtMetaspace, Is.True, "a SentencePiece vocabulary has no merge across a ▁ boundary");
        var plain = fast.WithMetaspaceSplit(false);
        string[] pieces = ["\u2581", "\u2581\u2581", "\u2581\u2581\u2581\u2581", "the", "a", "Lily", "ing", "日本", "😀",
            "é", "12", ".", "\n", "\t", "x"];
        var word = Gen.Int[0, pieces.Length - 1].Select(i => pieces[i]).Array[1, 400].Select(string.Concat);
        var master = new PCG(1, 0xB9E0_0001UL);
        for (int i = 0; i < 2_000; i++)
        {
            string w = word.Generate(new PCG(1, master.Next64()), null, out _);
            List<int> a = [], b = [];
            fast.Tokenize(w, new BpeMerger(), a);
            plain.Tokenize(w, new BpeMerger(), b);
            Assert.That(a, Is.EqualTo(b), OracleTests.Show(w));
        }
    }

    [Test]
    public void ByteLevelVocabulariesAreNotCut()
    {
        Assert.That(TokenizerFixtures.Tokenizer("gpt2").Definition.Model.SplitsAtMetaspace, Is.False);
        Assert.That(BpeModel.CrossesMetaspace("a\u2581"), Is.True);
        Assert.That(BpeModel.CrossesMetaspace("\u2581\u2581a"), Is.False);
        Assert.That(BpeModel.CrossesMetaspace(""), Is.False);
    }

    [Test]
    public void EqualRanksMergeLeftmostFirst()
    {
        // "aaa" with the one rule a+a: HF merges positions (0,1) first, leaving "aa a".
        var vocab = new Dictionary<string, int> { ["a"] = 0, ["aa"] = 1 };
        var merges = new BpeMerges(1);
        merges.Set(0, 0, 0, 1);
        var model = new BpeModel(vocab, merges, -1, false, false, false);
        var ids = new List<int>();
        model.Tokenize("aaa", new BpeMerger(), ids);
        Assert.That(ids, Is.EqualTo(new[] { 1, 0 }));
        ids.Clear();
        model.Tokenize("aaaa", new BpeMerger(), ids);
        Assert.That(ids, Is.EqualTo(new[] { 1, 1 }));
    }
}
