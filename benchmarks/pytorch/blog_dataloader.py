# The blog's base training as its script runs it: a per-sample Dataset and torch's DataLoader (batch 64,
# shuffle), the MLP on digits 0-7, Adam 1e-3, 5 epochs, raw pixels. Times the training loop only.
# Usage: OPENBLAS_NUM_THREADS=1 /usr/bin/python3 benchmarks/pytorch/blog_dataloader.py SEED THREADS
import os, struct, sys, time, json, numpy as np, torch
from torch.utils.data import Dataset, DataLoader
seed, threads = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(threads)
def idx(path):
    b = open(path,'rb').read(); nd = struct.unpack('>I', b[:4])[0] & 0xff
    dims = struct.unpack('>'+'I'*nd, b[4:4+4*nd]); return np.frombuffer(b[4+4*nd:], dtype=np.uint8).reshape(dims)
d = os.path.expanduser('~/.cache/lora-managed/mnist/')
X = idx(d+'train-images-idx3-ubyte'); y = idx(d+'train-labels-idx1-ubyte')
class Digits(Dataset):
    # One sample at a time, as a torchvision-style dataset hands them to the DataLoader.
    def __init__(self, images, labels): self.images, self.labels = images, labels
    def __len__(self): return len(self.labels)
    def __getitem__(self, i): return torch.tensor(self.images[i], dtype=torch.float32), int(self.labels[i])
keep = y < 8
torch.manual_seed(seed)
model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784,512), torch.nn.ReLU(), torch.nn.Linear(512,256), torch.nn.ReLU(), torch.nn.Linear(256,10))
loader = DataLoader(Digits(X[keep], y[keep]), batch_size=64, shuffle=True)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
t0 = time.time()
for epoch in range(5):
    for images, labels in loader:
        loss = torch.nn.functional.cross_entropy(model(images), labels); opt.zero_grad(); loss.backward(); opt.step()
print(json.dumps({"seed": seed, "threads": threads, "seconds_base_train": time.time() - t0}), flush=True)
