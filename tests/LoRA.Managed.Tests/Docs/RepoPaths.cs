namespace LoRA.Managed.Tests.Docs;

/// <summary>Finds the repository root (the folder holding LoRA.Managed.sln) from the test's output folder.</summary>
internal static class RepoPaths
{
    public static string Root
    {
        get
        {
            var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "LoRA.Managed.sln"))) dir = dir.Parent;
            return dir?.FullName
                ?? throw new DirectoryNotFoundException("LoRA.Managed.sln not found above " +
                    TestContext.CurrentContext.TestDirectory);
        }
    }
}
