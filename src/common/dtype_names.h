#pragma once
// PyTorch's names for tensor dtypes ("float32", "bfloat16", "int64", ...), for messages and for
// the values of options such as --dtype, and the way back from a name to the dtype.
//
// Torch-free: c10::ScalarType is declared here as the opaque enum it is (`enum class ScalarType :
// int8_t` in every LibTorch duet builds against), so code without LibTorch can include this
// header; callers that hold a dtype have LibTorch's full declaration already.
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace c10 {
enum class ScalarType : int8_t;
}  // namespace c10

namespace duet {

// "float32", "float64", "bfloat16", "float16", "int64", "int32", "int16", "int8", "uint8" or
// "bool" (c10 says "Float", "BFloat16", ...); c10's own name for any other dtype.
std::string dtype_name(c10::ScalarType type);

// The dtype that dtype_name() calls `name`, for the ten names above; nullopt for anything else.
std::optional<c10::ScalarType> dtype_from_name(std::string_view name);

// The dtype `name` names when it is one of `allowed`; otherwise throws a usage Error naming the
// option, the accepted names and the value:
//   --dtype: expected float32, float16 or bfloat16, got 'half'
c10::ScalarType parse_dtype_option(std::string_view option, std::string_view name,
                                   std::initializer_list<c10::ScalarType> allowed);

}  // namespace duet
