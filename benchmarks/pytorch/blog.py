# The blog's recipe in PyTorch (the peer we compare against; not part of the build or the tests) with pre-batched tensors: base MLP on 0-7, then rank-4 SVD LoRA on layers.5 for 8-9.
# Usage (Debian: apt-get install python3-torch libopenblas0-pthread; MNIST in ~/.cache/lora-managed/mnist, e.g. after `lora demo`):
#   OPENBLAS_NUM_THREADS=1 /usr/bin/python3 benchmarks/pytorch/blog.py 0 1 2
# Prints one JSON line per seed: base accuracy on 0-7 and 8-9, adapter accuracy on 8-9, the first five step losses, seconds.
# Pre-batched tensors (a DataLoader over indices draws the blog's shuffled batches, no per-sample Dataset); base models are saved to /tmp/pt/base{seed}.safetensors
# with PyTorch state_dict names, loadable by `lora eval --model`.
import json, struct, sys, numpy as np, torch, os, time
torch.set_num_threads(1)
def idx(path):
    b = open(path,'rb').read(); magic = struct.unpack('>I', b[:4])[0]; nd = magic & 0xff
    dims = struct.unpack('>'+'I'*nd, b[4:4+4*nd]); return np.frombuffer(b[4+4*nd:], dtype=np.uint8).reshape(dims)
d = os.path.expanduser('~/.cache/lora-managed/mnist/')
Xtr = torch.tensor(idx(d+'train-images-idx3-ubyte').reshape(-1,784), dtype=torch.float32); ytr = torch.tensor(idx(d+'train-labels-idx1-ubyte'), dtype=torch.long)
Xte = torch.tensor(idx(d+'t10k-images-idx3-ubyte').reshape(-1,784), dtype=torch.float32); yte = torch.tensor(idx(d+'t10k-labels-idx1-ubyte'), dtype=torch.long)
def save_st(path, sd):
    hdr = {}; off = 0; blobs = []
    for k in sorted(sd):
        a = sd[k].detach().contiguous().numpy().astype('<f4').tobytes(); hdr[k] = {"dtype":"F32","shape":list(sd[k].shape),"data_offsets":[off, off+len(a)]}; off += len(a); blobs.append(a)
    h = json.dumps(hdr).encode(); h += b' ' * ((8 - len(h) % 8) % 8)
    open(path,'wb').write(struct.pack('<Q', len(h)) + h + b''.join(blobs))
for seed in [int(s) for s in sys.argv[1:]]:
    t0 = time.time()
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784,512), torch.nn.ReLU(), torch.nn.Linear(512,256), torch.nn.ReLU(), torch.nn.Linear(256,10))
    m = ytr < 8; X, y = Xtr[m], ytr[m]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3); first = []
    for ep in range(5):
        for j in torch.utils.data.DataLoader(range(len(y)), batch_size=64, shuffle=True):  # the blog's shuffle, on indices
            loss = torch.nn.functional.cross_entropy(model(X[j]), y[j]); opt.zero_grad(); loss.backward(); opt.step()
            if len(first) < 5: first.append(round(loss.item(), 4))
    with torch.no_grad():
        t07 = yte < 8; acc07 = (model(Xte[t07]).argmax(1) == yte[t07]).float().mean().item(); acc89 = (model(Xte[~t07]).argmax(1) == yte[~t07]).float().mean().item()
    os.makedirs('/tmp/pt', exist_ok=True); save_st(f'/tmp/pt/base{seed}.safetensors', {f'layers.{k}': v for k, v in model.state_dict().items()})
    W3, b3 = model[5].weight.detach(), model[5].bias.detach()
    for p in model.parameters(): p.requires_grad_(False)
    U,S,Vh = torch.linalg.svd(W3); r = 4
    A = torch.nn.Parameter(U[:,:r] @ torch.diag(S[:r].sqrt())); B = torch.nn.Parameter(torch.diag(S[:r].sqrt()) @ Vh[:r,:])
    body = model[:5]
    m = ytr >= 8; X, y = Xtr[m], ytr[m]
    opt = torch.optim.Adam([A,B], lr=5e-3)
    for ep in range(3):
        for j in torch.utils.data.DataLoader(range(len(y)), batch_size=64, shuffle=True):
            logits = body(X[j]) @ (W3 + A@B).T + b3
            loss = torch.nn.functional.cross_entropy(logits, y[j]); opt.zero_grad(); loss.backward(); opt.step()
    with torch.no_grad():
        t = yte >= 8; lacc = ((body(Xte[t]) @ (W3 + A@B).T + b3).argmax(1) == yte[t]).float().mean().item()
    print(json.dumps({"seed": seed, "base_acc_0to7": acc07, "base_acc_89": acc89, "lora_acc_89": lacc, "first_losses": first, "seconds": time.time()-t0}), flush=True)
