// Encode throughput of Hugging Face tokenizers 0.23.2 (npm `tokenizers`, the Rust library) on the same text and
// tokenizer files as `--tokenizers` of LoRA.Managed.Benchmarks (Text/TokenizerThroughput.cs), for a side-by-side run:
//   node benchmarks/tokenizers/hf_encode_speed.mjs DIR_OR_JSON,... [--text FILE]
// A folder with vocab.json + merges.txt is wrapped in the Hub's gpt2 tokenizer.json layout. One thread per encode
// call is what the Node binding gives for a single text.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const work = mkdtempSync(join(tmpdir(), 'hf-speed-'));
execFileSync('npm', ['init', '-y'], { cwd: work, stdio: 'ignore' });
execFileSync('npm', ['install', '--no-save', 'tokenizers@0.23.2'], { cwd: work, stdio: 'ignore' });
const { Tokenizer } = createRequire(join(work, 'package.json'))('tokenizers');

const arg = (name) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1] : null; };
let text;
if (arg('--text')) text = readFileSync(arg('--text'), 'utf8');
else {
  const dir = '/usr/share/common-licenses';
  const files = readdirSync(dir).map((f) => join(dir, f)).filter((f) => !statSync(f).isDirectory()).sort();
  const all = files.map((f) => readFileSync(f, 'utf8')).join('');
  text = '';
  while (text.length < 1 << 20) text += all;
  text = text.slice(0, 1 << 20);
}

function tokenizerFile(source) {
  if (!statSync(source).isDirectory()) return source;
  if (existsSync(join(source, 'tokenizer.json'))) return join(source, 'tokenizer.json');
  const vocab = JSON.parse(readFileSync(join(source, 'vocab.json'), 'utf8'));
  const merges = readFileSync(join(source, 'merges.txt'), 'utf8').split('\n').filter((l, i) => !l.startsWith('#version') && l.length > 0);
  const path = join(work, 'gpt2.json');
  writeFileSync(path, JSON.stringify({
    version: '1.0', truncation: null, padding: null,
    added_tokens: [{ id: 50256, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
    normalizer: null, pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, vocab, merges },
  }));
  return path;
}

console.log(`text: ${text.length} UTF-16 units; Hugging Face tokenizers 0.23.2 (Node binding)`);
console.log(`${'tokenizer'.padEnd(40)} ${'tokens'.padStart(10)} ${'cold tok/s'.padStart(12)} ${'warm tok/s'.padStart(12)}`);
for (const source of process.argv[2].split(',')) {
  const tok = Tokenizer.fromFile(tokenizerFile(source));
  let t0 = process.hrtime.bigint();
  const n = (await tok.encode(text, null, { addSpecialTokens: false })).getIds().length;
  const cold = Number(process.hrtime.bigint() - t0) / 1e9;
  let warm = Infinity;
  for (let i = 0; i < 3; i++) {
    t0 = process.hrtime.bigint();
    await tok.encode(text, null, { addSpecialTokens: false });
    warm = Math.min(warm, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  const name = source.length <= 40 ? source : '…' + source.slice(-39);
  console.log(`${name.padEnd(40)} ${String(n).padStart(10)} ${Math.round(n / cold).toLocaleString('en').padStart(12)} ${Math.round(n / warm).toLocaleString('en').padStart(12)}`);
}
