// SPDX-License-Identifier: MIT
//
// The vector type of the compiled kernels (contraction.cpp here, ../native/phisnet.cpp): the
// GCC/Clang vector extension, 32 bytes (4 doubles or 8 floats). __may_alias__ and the scalar
// alignment let a V* point anywhere into an array of T (unaligned loads and stores).

#pragma once

template <typename T>
struct Simd;
template <>
struct Simd<double> {
    typedef double V __attribute__((vector_size(32), aligned(8), __may_alias__));
};
template <>
struct Simd<float> {
    typedef float V __attribute__((vector_size(32), aligned(4), __may_alias__));
};
