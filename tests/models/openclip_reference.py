"""Regenerates the OpenCLIP reference embeddings in test_openclip_parity.cpp (dev tool only;
the C++ tests never run Python). Needs `pip install open_clip_torch`.

Two small OpenCLIP CLIP models get the same deterministic weights the C++ test gives duet's
ClipModel (element i of parameter k in sorted-name order: 0.2 * hash_uniform(i, k), an integer
hash both languages compute exactly), the same images (0.5 * hash_uniform(i, 1000)) and token
ids, and their normalised embeddings are printed as C++ arrays.

    PYTHONPATH=... python tests/models/openclip_reference.py  # paste into the .cpp
"""
import torch
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

TOKENS = [
    [48, 5, 17, 33, 49, 0, 0, 0, 0, 0, 0, 0],
    [48, 7, 7, 21, 2, 45, 12, 9, 30, 11, 3, 49],
    [48, 40, 49, 13, 8, 49, 0, 0, 0, 0, 0, 0],  # two EOTs: pooling takes the first
]


def build(variant):
    if variant == "clip":
        vision = CLIPVisionCfg(layers=2, width=32, head_width=8, image_size=16, patch_size=4)
        text = CLIPTextCfg(context_length=12, vocab_size=50, width=32, heads=4, layers=2,
                           pool_type="argmax")
        return CLIP(embed_dim=8, vision_cfg=vision, text_cfg=text, quick_gelu=True)
    vision = CLIPVisionCfg(layers=2, width=32, head_width=8, image_size=16, patch_size=4,
                           pool_type="avg", ls_init_value=0.1)
    text = CLIPTextCfg(context_length=12, vocab_size=50, width=32, heads=4, layers=2,
                       pool_type="last", no_causal_mask=True, ls_init_value=0.1)
    return CLIP(embed_dim=8, vision_cfg=vision, text_cfg=text, quick_gelu=False)


def hash_uniform(i, k):
    """A value in [-1, 1) from a 32-bit integer hash of (i, k) (murmur3's finaliser)."""
    mask = 0xFFFFFFFF
    x = (i * 0x9E3779B1 + k * 0x85EBCA77 + 0x165667B1) & mask
    x ^= x >> 15
    x = (x * 0x2C1B3C6D) & mask
    x ^= x >> 12
    x = (x * 0x297A2D39) & mask
    x ^= x >> 15
    return x / 2.0**31 - 1.0


def values(n, k, scale):
    return torch.tensor([scale * hash_uniform(i, k) for i in range(n)], dtype=torch.float64)


def main():
    for variant in ("clip", "bidirectional"):
        model = build(variant).double().eval()
        params = dict(model.named_parameters())
        with torch.no_grad():
            for k, name in enumerate(sorted(params)):
                p = params[name]
                p.copy_(values(p.numel(), k, 0.2).view_as(p))
        images = values(2 * 3 * 16 * 16, 1000, 0.5).view(2, 3, 16, 16)
        with torch.no_grad():
            image = model.encode_image(images, normalize=True)
            text = model.encode_text(torch.tensor(TOKENS), normalize=True)
        print(f"// {variant}: {len(params)} parameter tensors, "
              f"{sum(p.numel() for p in params.values())} values")
        for what, t in (("Image", image), ("Text", text)):
            rows = []
            for row in t.tolist():
                cells = [f"{v:.17g}" for v in row]
                lines = [", ".join(cells[j:j + 4]) for j in range(0, len(cells), 4)]
                rows.append("    {" + ",\n     ".join(lines) + "}")
            name = f"k{variant.capitalize()}{what}"
            print(f"const double {name}[{t.shape[0]}][{t.shape[1]}] = {{\n" + ",\n".join(rows) + "};")


if __name__ == "__main__":
    main()
