#pragma once
// Catch2 comparisons of loss results against the float64 oracle, printing the max abs / rel
// error (normwise: relative to the largest |want|, at least `floor`) and the first mismatches.
#include <string>

// LibTorch (through the oracle) before Catch2: c10 defines a CHECK macro that Catch2's must
// replace.
#include "losses/loss_oracle.h"

#include <catch2/catch.hpp>

namespace duet::losses::testing {

inline void expect_close(const std::string& what, const torch::Tensor& got, const Matrix& want,
                         double rel_tol, double floor = 1e-6) {
  const Difference d = difference(to_matrix(got), want, floor, rel_tol);
  INFO(what << ": max abs err " << d.max_abs << ", max rel err " << d.max_rel << " (tol " << rel_tol
            << ") " << d.first_mismatches);
  CHECK(d.max_rel <= rel_tol);
}

inline void expect_close(const std::string& what, const torch::Tensor& got, double want,
                         double rel_tol, double floor = 1.0) {
  Matrix m(1, 1);
  m.at(0, 0) = want;
  expect_close(what, got, m, rel_tol, floor);
}

}  // namespace duet::losses::testing
