"""Oracle checks of duet's exports and imports against the tools that read them (run by CTest).

    python oracle.py {hf_clip|hf_siglip|open_clip|safetensors} --duet build/duet --bpe FILE

Each check builds small random-weight models (no downloads, no network), runs the duet binary
to export them and to compute embeddings, and loads the exported files with the reference
library, which must accept them strictly (no missing or unexpected keys) and produce the same
L2-normalised embeddings within 1e-4 on the same inputs:

  hf_clip      transformers CLIPModel + CLIPProcessor (tokenizer ids, preprocessing, embeddings);
               and the import direction: a CLIPModel saved by transformers, read by duet
  hf_siglip    transformers SiglipModel + AutoProcessor (SentencePiece tokenizer.json ids) and import
  open_clip    OpenCLIP's local-dir loader and tokenizer; OpenAI's build_model (OpenCLIP's copy)
  safetensors  the safetensors package reads duet's files; duet reads the package's files

Exit 0: passed; 1: a mismatch (printed); 77: a needed package is missing (CTest: skipped), or
1 for that too under CI=true.
"""
import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile

SKIP = 77
TOL = 1e-4


def skip(reason):
    """Skips the check (CTest shows it as skipped), except under CI=true, where setup.sh
    --test-deps installs every prerequisite, so a missing one fails the check."""
    if os.environ.get("CI") in ("true", "1"):
        print(f"FAILED: {reason} (under CI every oracle must run)")
        sys.exit(1)
    print(f"skipped: {reason}")
    sys.exit(SKIP)


def need(*modules):
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as e:  # ImportError, or a broken install
            skip(f"Python package '{name}' is not available ({e})")


class Duet:
    def __init__(self, binary, workdir):
        self.binary = binary
        self.workdir = workdir

    def run(self, *args, stdin=None):
        cmd = [self.binary, *map(str, args)]
        result = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"FAILED: {' '.join(cmd)}\n{result.stdout}\n{result.stderr}")
        return result

    def embed(self, config, *args):
        out = os.path.join(self.workdir, f"emb{len(os.listdir(self.workdir))}.npy")
        self.run("embed", "-c", config, *args, "--out", out)
        import numpy as np
        ids = open(out[:-4] + ".ids.txt").read().splitlines()
        return np.load(out), ids

    def tokens(self, config, texts):
        out = self.run("tokenize", "-c", config, "--json", "-", stdin="\n".join(texts) + "\n")
        return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def write_config(path, yaml):
    with open(path, "w") as f:
        f.write(yaml)
    return path


def write_images(workdir, size, count=3):
    """PNG images of exactly size x size (duet's and the reference's resizing are then both
    the identity), plus a CSV listing them."""
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(0)
    lines = ["filepath\ttitle"]
    paths = []
    for i in range(count):
        pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
        name = f"img{i}.png"
        Image.fromarray(pixels).save(os.path.join(workdir, name))
        paths.append(os.path.join(workdir, name))
        lines.append(f"{name}\tcaption {i}")
    csv = os.path.join(workdir, "images.csv")
    with open(csv, "w") as f:
        f.write("\n".join(lines) + "\n")
    return csv, paths


TEXTS = ["a photo of a cat", "a diagram", "two dogs playing in the snow!", "x",
         "the quick brown fox jumps over the lazy dog " * 3]


def normalized(t):
    import torch
    return torch.nn.functional.normalize(t.double(), dim=-1)


def features(output):
    """get_*_features returns a tensor (transformers 4) or an output with pooler_output (5)."""
    return output if hasattr(output, "dim") else output.pooler_output


class Report:
    def __init__(self):
        self.failures = []

    def close(self, what, a, b, tol=TOL):
        import numpy as np
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        if a.shape != b.shape:
            self.failures.append(f"{what}: shapes {a.shape} vs {b.shape}")
            print(f"FAIL {what}: shapes {a.shape} vs {b.shape}")
            return
        diff = float(np.abs(a - b).max()) if a.size else 0.0
        ok = diff <= tol
        print(f"{'ok  ' if ok else 'FAIL'} {what}: max |diff| {diff:.3g} (tolerance {tol:g})")
        if not ok:
            self.failures.append(what)

    def equal(self, what, a, b):
        ok = a == b
        print(f"{'ok  ' if ok else 'FAIL'} {what}")
        if not ok:
            print(f"  got      {a}\n  expected {b}")
            self.failures.append(what)

    def finish(self):
        if self.failures:
            print(f"{len(self.failures)} check(s) failed: {', '.join(self.failures)}")
            sys.exit(1)
        print("all checks passed")


def load_strict(cls, directory):
    model, info = cls.from_pretrained(directory, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v and k != "error_msgs"}
    problems.update({"error_msgs": info.get("error_msgs")} if info.get("error_msgs") else {})
    return model.eval(), problems


def check_hf_import(duet, work, config, model_class, hf_config, seed, texts_file, csv, duet_ids,
                    pixels, report):
    """A model transformers initialises (perturbed) and saves itself, imported by duet: the
    embeddings duet computes from it equal transformers' own."""
    import torch
    torch.manual_seed(seed)
    fresh = model_class(hf_config).eval()
    with torch.no_grad():
        for p in fresh.parameters():
            p.add_(0.02 * torch.randn_like(p))
    saved = os.path.join(work, "hf-saved")
    fresh.save_pretrained(saved)
    imported_text, _ = duet.embed(config, "--checkpoint", saved, "--texts", texts_file)
    imported_image, _ = duet.embed(config, "--checkpoint", saved, "--images", csv)
    with torch.no_grad():
        ref_text = normalized(features(fresh.get_text_features(input_ids=torch.tensor(duet_ids))))
        ref_image = normalized(features(fresh.get_image_features(pixel_values=pixels)))
    name = model_class.__name__
    report.close(f"import: text embeddings of a transformers-saved {name}", imported_text,
                 ref_text)
    report.close(f"import: image embeddings of a transformers-saved {name}", imported_image,
                 ref_image)


def check_hf_clip(duet, work, bpe, report):
    need("transformers", "torch", "numpy", "PIL")
    import torch
    from transformers import CLIPModel, CLIPProcessor
    config = write_config(os.path.join(work, "clip.yaml"), f"""
model:
  name: oracle-clip
  embed_dim: 40
  vision: {{image_size: 32, patch_size: 8, width: 64, layers: 2, heads: 4, act: quick_gelu}}
  text: {{context_length: 16, vocab_size: 49408, width: 48, layers: 2, heads: 4, act: gelu}}
tokenizer: {{type: clip_bpe, path: "{bpe}"}}
train: {{device: cpu, seed: 7}}
""")
    out = os.path.join(work, "hf")
    duet.run("export", "-c", config, "--format", "hf", "--out", out)
    model, problems = load_strict(CLIPModel, out)
    report.equal("CLIPModel loads every key, nothing left over", problems, {})
    processor = CLIPProcessor.from_pretrained(out)

    texts_file = os.path.join(work, "texts.txt")
    open(texts_file, "w").write("\n".join(TEXTS) + "\n")
    duet_text, _ = duet.embed(config, "--texts", texts_file)
    duet_ids = duet.tokens(config, TEXTS)
    enc = processor.tokenizer(TEXTS, padding="max_length", max_length=16, truncation=True)
    # transformers pads with <|endoftext|>, duet with 0; everything up to the padding is equal.
    unpadded = [[i for i, m in zip(ids, mask) if m] for ids, mask in
                zip(enc["input_ids"], enc["attention_mask"])]
    report.equal("tokenizer files give duet's ids (truncation keeps EOT; padding aside)",
                 unpadded, [row[:len(u)] for row, u in zip(duet_ids, unpadded)])
    report.equal("... and duet pads with 0 where transformers pads",
                 [row[len(u):] for row, u in zip(duet_ids, unpadded)],
                 [[0] * (16 - len(u)) for u in unpadded])
    with torch.no_grad():
        hf_text = normalized(features(model.get_text_features(
            input_ids=torch.tensor(enc["input_ids"]),
            attention_mask=torch.tensor(enc["attention_mask"]))))
    report.close("text embeddings (CLIPProcessor's ids + CLIPModel vs duet)", hf_text, duet_text)

    csv, paths = write_images(work, 32)
    duet_image, _ = duet.embed(config, "--images", csv)
    from PIL import Image
    pixels = processor(images=[Image.open(p).convert("RGB") for p in paths],
                       return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        hf_image = normalized(features(model.get_image_features(pixel_values=pixels)))
    report.close("image embeddings (CLIPProcessor + CLIPModel vs duet)", hf_image, duet_image)
    report.close("logit_scale", model.logit_scale.detach().reshape(1), [2.6592600369327779],
                 tol=1e-6)

    # Import: a CLIPModel transformers initialises and saves itself, read by duet.
    check_hf_import(duet, work, config, CLIPModel, model.config, 1, texts_file, csv, duet_ids,
                    pixels, report)


def check_hf_siglip(duet, work, bpe, report):
    need("transformers", "torch", "numpy", "PIL")
    import torch
    from transformers import AutoProcessor, SiglipModel
    captions = os.path.join(work, "captions.txt")
    words = "cat dog bird fish tree house car boat red green blue small large photo of a the".split()
    import random
    rnd = random.Random(0)
    open(captions, "w").write("\n".join(" ".join(rnd.choice(words) for _ in range(6))
                                        for _ in range(400)) + "\n")
    sp = duet.run("tokenizer", "train", "--input", captions, "--vocab-size", "40", "--out",
                  os.path.join(work, "sp")).stdout.strip()
    config = write_config(os.path.join(work, "siglip.yaml"), f"""
model:
  name: oracle-siglip
  embed_dim: 64
  logit_bias: true
  init_logit_scale: 2.302585092994046
  vision: {{image_size: 32, patch_size: 8, width: 64, layers: 2, heads: 4, act: gelu_tanh,
           pool: attention, class_token: false, patch_bias: true, ln_pre: false, proj: false}}
  text: {{context_length: 16, vocab_size: 40, width: 48, layers: 2, heads: 4, act: gelu_tanh,
         causal: false, pool: last, proj_bias: true}}
loss: {{type: siglip}}
tokenizer: {{type: sentencepiece, path: "{sp}"}}
train: {{device: cpu, seed: 8}}
""")
    out = os.path.join(work, "hf")
    duet.run("export", "-c", config, "--format", "hf", "--out", out)
    check_sentencepiece_ids(duet, work, config, out, report, "unigram")
    model, problems = load_strict(SiglipModel, out)
    report.equal("SiglipModel loads every key, nothing left over", problems, {})

    texts_file = os.path.join(work, "texts.txt")
    open(texts_file, "w").write("\n".join(TEXTS) + "\n")
    duet_text, _ = duet.embed(config, "--texts", texts_file)
    duet_ids = duet.tokens(config, TEXTS)
    with torch.no_grad():
        hf_text = normalized(features(model.get_text_features(input_ids=torch.tensor(duet_ids))))
    report.close("text embeddings (SiglipModel vs duet)", hf_text, duet_text)

    csv, paths = write_images(work, 32)
    duet_image, _ = duet.embed(config, "--images", csv)
    from PIL import Image
    processor = AutoProcessor.from_pretrained(out)  # SiglipProcessor: tokenizer + images
    report.equal("AutoProcessor gives duet's ids",
                 processor(text=TEXTS, padding="max_length", max_length=16,
                           truncation=True)["input_ids"], duet_ids)
    pixels = processor(images=[Image.open(p).convert("RGB") for p in paths],
                       return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        hf_image = normalized(features(model.get_image_features(pixel_values=pixels)))
    report.close("image embeddings (preprocessor + SiglipModel vs duet)", hf_image, duet_image)
    report.close("logit_scale, logit_bias",
                 [model.logit_scale.item(), model.logit_bias.item()],
                 [2.302585092994046, -10.0], tol=1e-6)

    check_hf_import(duet, work, config, SiglipModel, model.config, 2, texts_file, csv, duet_ids,
                    pixels, report)

    # Larger vocabularies (multi-character pieces), unigram and BPE; the BPE tokenizer.json
    # ranks merges by piece score.
    vocabulary = ("photo picture image drawing sketch painting of a an the one two three small "
                  "large big tiny red green blue yellow black white cat dog bird fish horse car "
                  "truck boat plane train shirt trouser pullover dress coat sandal sneaker bag "
                  "ankle boot on in with near under street beach forest city, - ! ? 1 2 3 42 "
                  "Photo Dog CITY").split()
    rich = os.path.join(work, "rich.txt")
    open(rich, "w").write("\n".join(" ".join(rnd.choice(vocabulary) for _ in range(rnd.randint(2, 9)))
                                    for _ in range(3000)) + "\n")
    for kind in ("unigram", "bpe"):
        model_file = duet.run("tokenizer", "train", "--input", rich, "--vocab-size", "90",
                              "--model-type", kind, "--out",
                              os.path.join(work, f"sp-{kind}")).stdout.strip()
        kind_config = write_config(
            os.path.join(work, f"siglip-{kind}.yaml"),
            open(config).read().replace(sp, model_file).replace("vocab_size: 40", "vocab_size: 90"))
        kind_out = os.path.join(work, f"hf-{kind}")
        duet.run("export", "-c", kind_config, "--format", "hf", "--out", kind_out)
        check_sentencepiece_ids(duet, work, kind_config, kind_out, report, f"{kind}, 90 pieces")


SP_TEXTS = TEXTS + ["  leading and trailing spaces  ", "several   inner    spaces",
                    "UPPER Case Photo", "unknown \u2206 symbol \u00e9t\u00e9", "cat\tdog",
                    "a " * 30, "a photo of a red sneaker, near the beach!", "Ankle-boot 42?",
                    "\uff21\uff22\uff23 full-width", "caf\u00e9 vs cafe\u0301", "plane  ,  train"]


def check_sentencepiece_ids(duet, work, config, out, report, kind):
    """The exported tokenizer.json gives duet's ids (padding and truncation included)."""
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(out)
    duet_ids = duet.tokens(config, SP_TEXTS)
    enc = tokenizer(SP_TEXTS, padding="max_length", max_length=16, truncation=True)
    report.equal(f"tokenizer.json ({kind} SentencePiece) gives duet's ids", enc["input_ids"],
                 duet_ids)
    report.equal("no attention mask for a bidirectional tower", "attention_mask" in enc, False)


def check_open_clip(duet, work, bpe, report):
    need("open_clip", "torch", "numpy", "PIL", "safetensors")
    import torch
    import open_clip
    from safetensors.torch import load_file
    # Head width 64 so that OpenAI's build_model (which assumes it) rebuilds the same model.
    config = write_config(os.path.join(work, "clip.yaml"), f"""
model:
  name: oracle-open-clip
  embed_dim: 48
  vision: {{image_size: 32, patch_size: 8, width: 128, layers: 2, heads: 2, act: quick_gelu}}
  text: {{context_length: 20, vocab_size: 49408, width: 128, layers: 2, heads: 2,
         act: quick_gelu}}
tokenizer: {{type: clip_bpe, path: "{bpe}"}}
train: {{device: cpu, seed: 9}}
""")
    out = os.path.join(work, "oc")
    duet.run("export", "-c", config, "--format", "open_clip", "--out", out)
    model, _, preprocess = open_clip.create_model_and_transforms("local-dir:" + out)
    model.eval()
    # create_model loads non-strictly on some paths: check the keys ourselves.
    state = load_file(os.path.join(out, "open_clip_model.safetensors"))
    missing, unexpected = model.load_state_dict(state, strict=False)
    report.equal("OpenCLIP's CLIP takes every key, nothing left over",
                 (list(missing), list(unexpected)), ([], []))
    tokenizer = open_clip.get_tokenizer("local-dir:" + out)
    duet_ids = duet.tokens(config, TEXTS)
    report.equal("OpenCLIP's tokenizer gives duet's ids", tokenizer(TEXTS).tolist(), duet_ids)

    texts_file = os.path.join(work, "texts.txt")
    open(texts_file, "w").write("\n".join(TEXTS) + "\n")
    duet_text, _ = duet.embed(config, "--texts", texts_file)
    csv, paths = write_images(work, 32)
    duet_image, _ = duet.embed(config, "--images", csv)
    from PIL import Image
    pixels = torch.stack([preprocess(Image.open(p).convert("RGB")) for p in paths])
    with torch.no_grad():
        report.close("text embeddings (OpenCLIP vs duet)",
                     normalized(model.encode_text(torch.tensor(duet_ids))), duet_text)
        report.close("image embeddings (OpenCLIP preprocess + model vs duet)",
                     normalized(model.encode_image(pixels)), duet_image)

    # OpenAI's builder infers the architecture from the state dict alone (float16 weights).
    half = os.path.join(work, "oc16")
    duet.run("export", "-c", config, "--format", "open_clip", "--dtype", "float16", "--out", half)
    state16 = load_file(os.path.join(half, "open_clip_model.safetensors"))
    openai = open_clip.model.build_model_from_openai_state_dict(dict(state16)).float().eval()
    half_text, _ = duet.embed(config, "--checkpoint", half, "--texts", texts_file)
    with torch.no_grad():
        report.close("OpenAI build_model: text embeddings of the float16 export",
                     normalized(openai.encode_text(torch.tensor(duet_ids))), half_text)


def check_safetensors(duet, work, bpe, report):
    need("safetensors", "torch", "numpy")
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file
    config = write_config(os.path.join(work, "clip.yaml"), f"""
model:
  embed_dim: 24
  vision: {{image_size: 16, patch_size: 4, width: 32, layers: 1, heads: 4}}
  text: {{context_length: 12, vocab_size: 49408, width: 32, layers: 1, heads: 4,
         proj_bias: true}}
tokenizer: {{type: clip_bpe, path: "{bpe}"}}
train: {{device: cpu, seed: 10}}
""")
    path = os.path.join(work, "duet.safetensors")
    duet.run("export", "-c", config, "--format", "safetensors", "--out", path)
    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
        names = list(f.keys())
    report.equal("metadata records the layout and the config",
                 (meta.get("format"), meta.get("duet_layout"), "model:" in meta.get("duet_config", "")),
                 ("pt", "duet", True))
    report.equal("duet's names", "visual.conv1.weight" in names and "text_projection_bias" in names,
                 True)
    tensors = load_file(path)
    # The package writes its own layout (sorted, its own padding); duet must read it back.
    resaved = os.path.join(work, "resaved.safetensors")
    save_file({k: v.clone() for k, v in reversed(list(tensors.items()))}, resaved,
              metadata={"format": "pt"})
    texts_file = os.path.join(work, "texts.txt")
    open(texts_file, "w").write("\n".join(TEXTS) + "\n")
    a, _ = duet.embed(config, "--checkpoint", path, "--texts", texts_file)
    b, _ = duet.embed(config, "--checkpoint", resaved, "--texts", texts_file)
    report.close("duet reads the safetensors package's file: same embeddings", a, b, tol=0.0)
    # bfloat16 export read by the package.
    bf16 = os.path.join(work, "bf16.safetensors")
    duet.run("export", "-c", config, "--format", "safetensors", "--dtype", "bfloat16", "--out", bf16)
    t16 = load_file(bf16)
    report.equal("bfloat16 export: dtypes", {v.dtype for v in t16.values()}, {torch.bfloat16})
    report.close("bfloat16 export: values are the rounded float32 ones",
                 t16["visual.proj"].float(), tensors["visual.proj"].bfloat16().float(), tol=0.0)


CHECKS = {"hf_clip": check_hf_clip, "hf_siglip": check_hf_siglip,
          "open_clip": check_open_clip, "safetensors": check_safetensors}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("check", choices=sorted(CHECKS))
    parser.add_argument("--duet", required=True)
    parser.add_argument("--bpe", required=True)
    args = parser.parse_args()
    if not os.path.exists(args.bpe):
        skip(f"CLIP BPE vocabulary {args.bpe} is missing")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never download
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    report = Report()
    with tempfile.TemporaryDirectory(prefix="duet-oracle-") as work:
        embeddings = os.path.join(work, "embeddings")
        os.makedirs(embeddings)
        CHECKS[args.check](Duet(args.duet, embeddings), work, os.path.abspath(args.bpe), report)
    report.finish()


if __name__ == "__main__":
    main()
