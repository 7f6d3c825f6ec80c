# The blog's adapter phase in PyTorch on a base model saved by `lora demo --out RUN` (rank-4 SVD LoRA on layers.5, Adam 5e-3, 3 epochs on 8-9).
# Usage: /usr/bin/python3 benchmarks/pytorch/lora_phase.py RUN/base_model.safetensors 6   (six shuffle seeds)
# Seed s draws the same batches as `lora finetune --model RUN/base_model.safetensors --digits 8,9 --seed s`.
import json, struct, sys, numpy as np, torch, os
torch.set_num_threads(1)
def load_st(path):
    b = open(path,'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8+n]); base = 8+n
    out = {}
    for k,v in h.items():
        if k == '__metadata__': continue
        s,e = v['data_offsets']; out[k] = torch.from_numpy(np.frombuffer(b[base+s:base+e], dtype=np.float32).reshape(v['shape']).copy())
    return out
def idx(path):
    b = open(path,'rb').read(); magic = struct.unpack('>I', b[:4])[0]; nd = magic & 0xff
    dims = struct.unpack('>'+'I'*nd, b[4:4+4*nd]); return np.frombuffer(b[4+4*nd:], dtype=np.uint8).reshape(dims)
d = os.path.expanduser('~/.cache/lora-managed/mnist/')
Xtr = torch.tensor(idx(d+'train-images-idx3-ubyte').reshape(-1,784), dtype=torch.float32); ytr = torch.tensor(idx(d+'train-labels-idx1-ubyte'), dtype=torch.long)
Xte = torch.tensor(idx(d+'t10k-images-idx3-ubyte').reshape(-1,784), dtype=torch.float32); yte = torch.tensor(idx(d+'t10k-labels-idx1-ubyte'), dtype=torch.long)
m89 = (ytr >= 8); X89, y89 = Xtr[m89], ytr[m89]; t89 = yte >= 8
sd = load_st(sys.argv[1])
W1,b1,W2,b2,W3,b3 = [sd[k] for k in ['layers.1.weight','layers.1.bias','layers.3.weight','layers.3.bias','layers.5.weight','layers.5.bias']]
def hidden(x): return torch.relu(torch.relu(x@W1.T+b1)@W2.T+b2)
H89 = hidden(X89); Ht89 = hidden(Xte[t89])
for seed in range(int(sys.argv[2])):
    torch.manual_seed(seed)
    U,S,Vh = torch.linalg.svd(W3); r=4
    A = torch.nn.Parameter(U[:,:r] @ torch.diag(S[:r].sqrt())); B = torch.nn.Parameter(torch.diag(S[:r].sqrt()) @ Vh[:r,:])
    opt = torch.optim.Adam([A,B], lr=5e-3)
    for ep in range(3):
        for idxs in torch.utils.data.DataLoader(range(len(y89)), batch_size=64, shuffle=True):  # the batches `lora finetune --seed` draws
            logits = H89[idxs] @ (W3 + A@B).T + b3
            loss = torch.nn.functional.cross_entropy(logits, y89[idxs])
            opt.zero_grad(); loss.backward(); opt.step()
    with torch.no_grad():
        acc = ((Ht89 @ (W3 + A@B).T + b3).argmax(1) == yte[t89]).float().mean().item()
    print(f"pytorch LoRA phase on {sys.argv[1]}, shuffle seed {seed}: acc 8-9 {acc:.4f}")
