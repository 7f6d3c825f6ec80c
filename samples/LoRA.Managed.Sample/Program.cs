using LoRA.Managed.Sample;

// lora-sample [FOLDER]: see SampleApp (the models and adapter go to FOLDER, default: a folder under the temp path).
string folder = args.Length > 0 ? args[0] : Path.Combine(Path.GetTempPath(), "lora-sample");
return SampleApp.Run(folder, Console.In, Console.Out);
