#pragma once
// The PTX ISA's fragment layouts (mma.m16n8k16 .f16/.bf16, mma.m16n8k8 .tf32, ldmatrix .m8n8
// .b16), written independently of kernels/intrinsics.h: intrinsics.h maps (lane, element) to
// (row, col); these tables go the other way, from each matrix position to the lane and element
// that hold it, read off the ISA's figures ("four consecutive threads hold one row of an 8x8
// piece, two elements each"). Tests build fragments and read results with these, so a layout
// slip on either side shows up as a wrong product.
//
// "element" is the ISA's a_i / b_i / c_i index: for 16-bit types element i lives in register
// i / 2, low half when i is even.
#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

namespace duet::kernels::testing {

struct FragmentSlot {
  int lane;
  int element;
};

// mma.m16n8k16 A (16 x 16, row-major "row"): the 16x16 tile is four 8x8 pieces; piece
// (row / 8, col / 8) is elements {0,1}, {2,3}, {4,5}, {6,7} for pieces (0,0), (1,0), (0,1), (1,1).
inline FragmentSlot m16n8k16_a_slot(int row, int col) {
  const int piece = (row / 8) + 2 * (col / 8);
  return {(row % 8) * 4 + (col % 8) / 2, 2 * piece + col % 2};
}

// mma.m16n8k16 B (16 x 8, K x N, "col"): column n is held by lanes 4n..4n+3; k 0-7 are elements
// 0,1 and k 8-15 elements 2,3, two consecutive k per lane.
inline FragmentSlot m16n8k16_b_slot(int k, int n) {
  return {n * 4 + (k % 8) / 2, 2 * (k / 8) + k % 2};
}

// C/D of both shapes (16 x 8): rows 0-7 are elements 0,1 and rows 8-15 elements 2,3; four lanes
// per row, two consecutive columns each.
inline FragmentSlot accumulator_slot(int row, int col) {
  return {(row % 8) * 4 + col / 2, 2 * (row / 8) + col % 2};
}

// mma.m16n8k8 tf32 A (16 x 8): one element per register; lane (row % 8) * 4 + col % 4; element 0
// (rows 0-7, cols 0-3), 1 (rows 8-15, cols 0-3), 2 (rows 0-7, cols 4-7), 3 (rows 8-15, cols 4-7).
inline FragmentSlot m16n8k8_tf32_a_slot(int row, int col) {
  return {(row % 8) * 4 + col % 4, row / 8 + 2 * (col / 4)};
}

// mma.m16n8k8 tf32 B (8 x 8, K x N): lane n * 4 + k % 4; element 0 for k 0-3, 1 for k 4-7.
inline FragmentSlot m16n8k8_tf32_b_slot(int k, int n) { return {n * 4 + k % 4, k / 4}; }

// ldmatrix .m8n8 .b16: element (row, col) of a matrix goes to lane row * 4 + col / 2, low half
// for even col. With .trans, element (row, col) of the stored matrix goes where (col, row) would.
inline FragmentSlot ldmatrix_slot(int row, int col, bool trans) {
  if (trans) {
    return {col * 4 + row / 2, row % 2};
  }
  return {row * 4 + col / 2, col % 2};
}

inline uint32_t float_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof(u));
  return u;
}

inline float bits_float(uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof(x));
  return x;
}

// Puts a 16-bit value into half `element % 2` of register `element / 2` of lane `slot.lane` in a
// [32][registers] fragment array.
inline void put_half(std::vector<uint32_t>& fragment, int registers, FragmentSlot slot,
                     uint16_t value) {
  uint32_t& reg = fragment[static_cast<std::size_t>(slot.lane * registers + slot.element / 2)];
  if (slot.element % 2 == 0) {
    reg = (reg & 0xffff0000u) | value;
  } else {
    reg = (reg & 0x0000ffffu) | (static_cast<uint32_t>(value) << 16);
  }
}

}  // namespace duet::kernels::testing
