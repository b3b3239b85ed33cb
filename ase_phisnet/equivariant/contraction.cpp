// SPDX-License-Identifier: MIT
//
// Sparse trilinear contraction over rows (ase_phisnet/equivariant/contraction.py):
//
//     out[o][r] = sum over entries t of output o:  coef[t] * a1[i1[t]][r] * a2[i2[t]][r] * a3[i3[t]][r]
//
// Every operand is (components, R), row-major, with the R rows (channel x pair or atom) last.
// The entries are grouped by output component (start[o] .. start[o + 1]). A block of W rows of
// one output stays in registers while its entries stream past; the operands' blocks (a few
// dozen components x W rows) stay in the L1 cache. The tensor products' forward, their
// gradients and the gradients' gradients are all this one contraction with the roles of the
// output and one operand exchanged, so no outer product is ever formed.
//
// Single-threaded; the loops over a block's W rows are what the compiler vectorizes. The sum
// over a component's entries runs in entry order, so results do not depend on R or on a row's place.

#include <Python.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "simd.h"

namespace {

// One block of W = NV vectors of rows: the operands' rows of the block are first copied into
// one contiguous buffer (rows R apart would all fall into the same few cache sets), then every
// output component's entries are summed in NV vector registers. Consecutive entries with the
// same third operand (a path's weight) form a run: sum c a1 a2 over the run, then multiply by
// a3 once.
template <typename T, int NV>
void block(int32_t n_out, int64_t R, int64_t r0, const int32_t* run_start, const int32_t* run_row, const int32_t* off, const T* coef,
           const T* const* operand, const int32_t* n_comp, T* buffer, T* out) {
    using V = typename Simd<T>::V;
    constexpr int L = sizeof(V) / sizeof(T);
    constexpr int W = NV * L;
    T* b = buffer;
    for (int k = 0; k < 3; ++k)
        for (int32_t c = 0; c < n_comp[k]; ++c, b += W) std::memcpy(b, operand[k] + c * R + r0, W * sizeof(T));
    for (int32_t o = 0; o < n_out; ++o) {
        V acc[NV] = {};
        for (int32_t q = run_start[o]; q < run_start[o + 1]; ++q) {
            V part[NV] = {};
            for (int32_t t = run_row[2 * q]; t < run_row[2 * q + 2]; ++t) {
                const T c = coef[t];
                const V* x = reinterpret_cast<const V*>(buffer + off[2 * t] * W);
                const V* y = reinterpret_cast<const V*>(buffer + off[2 * t + 1] * W);
                for (int v = 0; v < NV; ++v) part[v] += c * x[v] * y[v];
            }
            const V* z = reinterpret_cast<const V*>(buffer + run_row[2 * q + 1] * W);
            for (int v = 0; v < NV; ++v) acc[v] += part[v] * z[v];
        }
        for (int v = 0; v < NV; ++v) *reinterpret_cast<V*>(out + o * R + r0 + v * L) = acc[v];
    }
}

template <typename T>
void contract(int32_t n_out, int64_t R, const int32_t* start, const int32_t* i1, const int32_t* i2, const int32_t* i3, const T* coef, const T* a1,
              const T* a2, const T* a3, T* out) {
    constexpr int L = sizeof(typename Simd<T>::V) / sizeof(T);
    constexpr int NV = 32 / L;  // blocks of 32 rows: 4 vector accumulators of floats, 8 of doubles
    const int32_t n = start[n_out];
    int32_t n_comp[3] = {0, 0, 0};  // components of each operand that the entries use (at most the highest index + 1)
    for (int32_t t = 0; t < n; ++t) n_comp[0] = std::max(n_comp[0], i1[t] + 1), n_comp[1] = std::max(n_comp[1], i2[t] + 1), n_comp[2] = std::max(n_comp[2], i3[t] + 1);
    std::vector<int32_t> off(2 * (size_t)n);  // each entry's first two rows in the block buffer
    for (int32_t t = 0; t < n; ++t) off[2 * t] = i1[t], off[2 * t + 1] = n_comp[0] + i2[t];
    // runs of equal i3 within each output: run q covers entries run_row[2q] .. run_row[2q + 2]
    // and multiplies by buffer row run_row[2q + 1]
    std::vector<int32_t> run_start(n_out + 1), run_row;
    for (int32_t o = 0; o < n_out; ++o) {
        run_start[o] = (int32_t)(run_row.size() / 2);
        for (int32_t t = start[o]; t < start[o + 1]; ++t)
            if (t == start[o] || i3[t] != i3[t - 1]) run_row.push_back(t), run_row.push_back(n_comp[0] + n_comp[1] + i3[t]);
    }
    run_start[n_out] = (int32_t)(run_row.size() / 2);
    run_row.push_back(n);  // the end of the last run
    std::vector<T> buffer((size_t)(n_comp[0] + n_comp[1] + n_comp[2]) * NV * L);
    const T* operand[3] = {a1, a2, a3};
    int64_t r0 = 0;
    for (; r0 + NV * L <= R; r0 += NV * L) block<T, NV>(n_out, R, r0, run_start.data(), run_row.data(), off.data(), coef, operand, n_comp, buffer.data(), out);
    for (; r0 + L <= R; r0 += L) block<T, 1>(n_out, R, r0, run_start.data(), run_row.data(), off.data(), coef, operand, n_comp, buffer.data(), out);
    if (r0 == R) return;
    for (int32_t o = 0; o < n_out; ++o) {  // the last rows, fewer than one vector: the same sums, one row at a time
        for (int64_t r = r0; r < R; ++r) {
            T acc = 0;
            for (int32_t q = run_start[o]; q < run_start[o + 1]; ++q) {
                T part = 0;
                for (int32_t t = run_row[2 * q]; t < run_row[2 * q + 2]; ++t) part += coef[t] * a1[i1[t] * R + r] * a2[i2[t] * R + r];
                acc += part * a3[i3[run_row[2 * q]] * R + r];
            }
            out[o * R + r] = acc;
        }
    }
}

}  // namespace

extern "C" {

int contraction_abi_version() { return 1; }

void trilinear_f64(int32_t n_out, int64_t R, const int32_t* start, const int32_t* i1, const int32_t* i2, const int32_t* i3, const double* coef,
                   const double* a1, const double* a2, const double* a3, double* out) {
    contract<double>(n_out, R, start, i1, i2, i3, coef, a1, a2, a3, out);
}

void trilinear_f32(int32_t n_out, int64_t R, const int32_t* start, const int32_t* i1, const int32_t* i2, const int32_t* i3, const float* coef,
                   const float* a1, const float* a2, const float* a3, float* out) {
    contract<float>(n_out, R, start, i1, i2, i3, coef, a1, a2, a3, out);
}

}  // extern "C"

// A module object only so that the file builds as a Python extension (and is found with
// importlib); it is called through ctypes.
static struct PyModuleDef contraction_module = {PyModuleDef_HEAD_INIT, "_contraction", "Sparse trilinear contraction (called through ctypes).", -1, nullptr, nullptr, nullptr, nullptr, nullptr};

PyMODINIT_FUNC PyInit__contraction(void) { return PyModule_Create(&contraction_module); }
