#pragma once
// Moving a model's parameters in and out of other tools' layouts: the key maps of key_map.h
// applied to tensors, and safetensors files as name -> tensor maps.
#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "export/key_map.h"
#include "export/safetensors.h"

namespace duet::models {
class ClipModelImpl;
}

namespace duet::export_ {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;  // ordered
using TensorMap = std::map<std::string, at::Tensor>;

// The model's parameters under `format`'s names, in parameter order: CPU, contiguous, floating
// point ones cast to `dtype` (float32, float16 or bfloat16). Throws when the format cannot hold
// the model (see unsupported()).
NamedTensors export_tensors(const models::ClipModelImpl& model, Format format,
                            at::ScalarType dtype);

// Copies `tensors` (named as `format` names them) into the model's parameters, casting to each
// parameter's dtype and device. Every parameter must be found with its shape and every tensor
// used: otherwise nothing is copied and a runtime Error lists each missing, unexpected and
// mis-shaped key, naming `origin`. Buffers the other tools store beside their parameters
// (position_ids) are ignored.
void import_tensors(models::ClipModelImpl& model, const TensorMap& tensors, Format format,
                    const std::string& origin);

// Every tensor of a validated file, copied to CPU tensors of the matching dtype. Throws when a
// dtype has no LibTorch counterpart.
TensorMap read_tensors(const SafetensorsFile& file);

// Writes `tensors` (CPU, any layout) as a safetensors file.
void write_tensors(const std::string& path, const NamedTensors& tensors,
                   const std::map<std::string, std::string>& metadata);

}  // namespace duet::export_
