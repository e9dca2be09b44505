// Key maps applied to tensors, and safetensors files as tensors (see state_dict.h). Invariant of
// import_tensors: the model is modified only after every rule has found its tensors with the
// expected shapes and every source tensor has been claimed.
#include "export/state_dict.h"

#include <torch/torch.h>

#include <cstring>
#include <set>

#include "common/error.h"
#include "models/clip_model.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors data is little-endian; this code copies it as is");

namespace duet::export_ {
namespace {

std::optional<at::ScalarType> scalar_type(Dtype dtype) {
  switch (dtype) {
    case Dtype::kBool:
      return at::kBool;
    case Dtype::kU8:
      return at::kByte;
    case Dtype::kI8:
      return at::kChar;
    case Dtype::kI16:
      return at::kShort;
    case Dtype::kF16:
      return at::kHalf;
    case Dtype::kBF16:
      return at::kBFloat16;
    case Dtype::kI32:
      return at::kInt;
    case Dtype::kF32:
      return at::kFloat;
    case Dtype::kF64:
      return at::kDouble;
    case Dtype::kI64:
      return at::kLong;
    default:
      return std::nullopt;
  }
}

Dtype file_dtype(at::ScalarType type, const std::string& name) {
  switch (type) {
    case at::kBool:
      return Dtype::kBool;
    case at::kByte:
      return Dtype::kU8;
    case at::kChar:
      return Dtype::kI8;
    case at::kShort:
      return Dtype::kI16;
    case at::kHalf:
      return Dtype::kF16;
    case at::kBFloat16:
      return Dtype::kBF16;
    case at::kInt:
      return Dtype::kI32;
    case at::kFloat:
      return Dtype::kF32;
    case at::kDouble:
      return Dtype::kF64;
    case at::kLong:
      return Dtype::kI64;
    default:
      fail("cannot write tensor '{}': dtype {} has no safetensors counterpart", name,
           c10::toString(type));
  }
}

std::string show(at::IntArrayRef shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    out += (i ? ", " : "") + std::to_string(shape[i]);
  }
  return out + "]";
}

std::string show(const std::vector<int64_t>& shape) { return show(at::IntArrayRef(shape)); }

// Keys other tools keep in their state dicts that are not parameters.
bool ignorable(const std::string& name) {
  const std::string suffix = "position_ids";
  return name.size() >= suffix.size() &&
         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::vector<std::string> parameter_names(const models::ClipModelImpl& model) {
  std::vector<std::string> names;
  for (const auto& item : model.named_parameters()) {
    names.push_back(item.key());
  }
  return names;
}

}  // namespace

NamedTensors export_tensors(const models::ClipModelImpl& model, Format format,
                            at::ScalarType dtype) {
  const auto params = model.named_parameters();
  const std::vector<KeyRule> rules = key_map(parameter_names(model), format, model.config());
  NamedTensors out;
  torch::NoGradGuard no_grad;
  for (const auto& rule : rules) {
    torch::Tensor p = params[rule.duet].detach().to(torch::kCPU);
    if (p.is_floating_point()) {
      p = p.to(dtype);
    }
    switch (rule.transform) {
      case Transform::kCopy:
        out.emplace_back(rule.targets[0], p.contiguous());
        break;
      case Transform::kTranspose:
        out.emplace_back(rule.targets[0], p.t().contiguous());
        break;
      case Transform::kSplit3: {
        const auto parts = p.chunk(3, 0);
        for (size_t i = 0; i < 3; ++i) {
          out.emplace_back(rule.targets[i], parts[i].contiguous());
        }
        break;
      }
      case Transform::kScalarTo1d:
        out.emplace_back(rule.targets[0], p.reshape({1}).contiguous());
        break;
    }
  }
  return out;
}

void import_tensors(models::ClipModelImpl& model, const TensorMap& tensors, Format format,
                    const std::string& origin) {
  auto params = model.named_parameters();
  const std::vector<KeyRule> rules = key_map(parameter_names(model), format, model.config());
  std::vector<std::string> problems;
  std::set<std::string> used;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;  // (parameter, value)
  for (const auto& rule : rules) {
    torch::Tensor param = params[rule.duet];
    const std::vector<int64_t> expected = target_shape(param.sizes().vec(), rule.transform);
    std::vector<torch::Tensor> found;
    for (const auto& target : rule.targets) {
      used.insert(target);
      const auto it = tensors.find(target);
      if (it == tensors.end()) {
        problems.push_back(
            fmt::format("missing '{}' (for {}, expected {})", target, rule.duet, show(expected)));
        continue;
      }
      if (it->second.sizes().vec() != expected) {
        problems.push_back(fmt::format("'{}' has shape {}, expected {} (for {})", target,
                                       show(it->second.sizes()), show(expected), rule.duet));
        continue;
      }
      if (!it->second.is_floating_point()) {
        problems.push_back(fmt::format("'{}' is {}, expected a floating-point tensor", target,
                                       c10::toString(it->second.scalar_type())));
        continue;
      }
      found.push_back(it->second);
    }
    if (found.size() != rule.targets.size()) {
      continue;
    }
    torch::Tensor value;
    switch (rule.transform) {
      case Transform::kCopy:
        value = found[0];
        break;
      case Transform::kTranspose:
        value = found[0].t();
        break;
      case Transform::kSplit3:
        value = torch::cat(found, 0);
        break;
      case Transform::kScalarTo1d:
        value = found[0].reshape({});
        break;
    }
    copies.emplace_back(param, value);
  }
  for (const auto& [name, tensor] : tensors) {
    if (!used.count(name) && !ignorable(name)) {
      problems.push_back(fmt::format("unexpected '{}' {} (no parameter of this model takes it)",
                                     name, show(tensor.sizes())));
    }
  }
  if (!problems.empty()) {
    std::string list;
    for (const auto& p : problems) {
      list += "\n  " + p;
    }
    fail("'{}' does not fit this model ({} format, {} problem{}):{}", origin, format_name(format),
         problems.size(), problems.size() == 1 ? "" : "s", list);
  }
  torch::NoGradGuard no_grad;
  for (auto& [param, value] : copies) {
    param.copy_(value.to(param.device(), param.scalar_type()));
  }
}

TensorMap read_tensors(const SafetensorsFile& file) {
  TensorMap out;
  for (const auto& entry : file.tensors()) {
    const auto type = scalar_type(entry.dtype);
    if (!type) {
      fail("'{}': tensor '{}' has dtype {}, which duet does not read", file.path(), entry.name,
           dtype_name(entry.dtype));
    }
    torch::Tensor t = torch::empty(entry.shape, torch::TensorOptions().dtype(*type));
    const std::string_view bytes = file.data(entry);
    if (!bytes.empty()) {
      std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
    }
    out.emplace(entry.name, std::move(t));
  }
  return out;
}

void write_tensors(const std::string& path, const NamedTensors& tensors,
                   const std::map<std::string, std::string>& metadata) {
  std::vector<torch::Tensor> keep;  // contiguous CPU copies outlive the views
  std::vector<TensorView> views;
  for (const auto& [name, tensor] : tensors) {
    torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    keep.push_back(t);
    views.push_back(
        TensorView{name, file_dtype(t.scalar_type(), name), t.sizes().vec(), t.data_ptr()});
  }
  write_safetensors(path, views, metadata);
}

}  // namespace duet::export_
