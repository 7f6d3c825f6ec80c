# Applies an adapter directory the way PEFT would (W + lora_alpha/r * B @ A, keys base_model.model.<module>.lora_{A,B}.weight)
# Usage: /usr/bin/python3 benchmarks/pytorch/peft_check.py RUN/base_model.safetensors RUN/adapter   (RUN from `lora demo --out RUN`)
# to a base model in PyTorch and prints the accuracy on test 8-9.
import json, struct, sys, os, numpy as np, torch
def load_st(path):
    b = open(path,'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8+n]); base = 8+n
    return {k: torch.from_numpy(np.frombuffer(b[base+v['data_offsets'][0]:base+v['data_offsets'][1]], dtype=np.float32).reshape(v['shape']).copy()) for k,v in h.items() if k != '__metadata__'}, h.get('__metadata__')
def idx(path):
    b = open(path,'rb').read(); nd = struct.unpack('>I', b[:4])[0] & 0xff
    dims = struct.unpack('>'+'I'*nd, b[4:4+4*nd]); return np.frombuffer(b[4+4*nd:], dtype=np.uint8).reshape(dims)
base, _ = load_st(sys.argv[1]); ad, meta = load_st(os.path.join(sys.argv[2], 'adapter_model.safetensors'))
cfg = json.load(open(os.path.join(sys.argv[2], 'adapter_config.json')))
print('metadata', meta, 'keys', sorted(ad)); print('config', {k: cfg[k] for k in ['peft_type','r','lora_alpha','target_modules','use_rslora','bias']})
scale = cfg['lora_alpha'] / (cfg['r'] ** 0.5 if cfg['use_rslora'] else cfg['r'])
for t in cfg['target_modules']:
    A, B = ad[f'base_model.model.{t}.lora_A.weight'], ad[f'base_model.model.{t}.lora_B.weight']
    base[f'{t}.weight'] = base[f'{t}.weight'] + scale * B @ A
d = os.path.expanduser('~/.cache/lora-managed/mnist/')
X = torch.tensor(idx(d+'t10k-images-idx3-ubyte').reshape(-1,784), dtype=torch.float32); y = torch.tensor(idx(d+'t10k-labels-idx1-ubyte'), dtype=torch.long)
m = y >= 8; h = X[m]
for i in (1, 3, 5):
    h = h @ base[f'layers.{i}.weight'].T + base[f'layers.{i}.bias']
    if i != 5: h = torch.relu(h)
print('PEFT-style accuracy on test 8-9:', round((h.argmax(1) == y[m]).float().mean().item(), 4))
