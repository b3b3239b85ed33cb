// SPDX-License-Identifier: MIT
//
// The PhiSNet network on the CPU in one call: matrices forward, positions gradient backward.
//
// ase_phisnet/native/pack.py lays a PhiSNet model out as the structs below (weights already
// scaled as the torch modules use them) and ase_phisnet/native/engine.py calls
//
//     engine_create -> engine_forward (matrices of a batch of molecules) -> engine_backward
//     (dL/dpositions from dL/dmatrices) ... -> engine_destroy
//
// through ctypes. The arithmetic is that of ase_phisnet/model (same order of the paths, same
// constants); the tests compare the two in float64. Only the first derivative with respect to
// the positions is computed: forces at inference. Training, which differentiates the weights
// and the forces, stays on the torch path.
//
// Layouts. A feature row holds, for every irrep component c = l^2 + m (l = 0..lmax,
// m = 0..2l), a contiguous block of channels: x[c * stride_c + u]. An equivariant linear map's
// output holds its orders one after the other, each as (2l+1) x channels. Everything is
// single-threaded; the channel loops are what the compiler vectorizes.

#include <Python.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <new>
#include <vector>

#include "../equivariant/simd.h"

namespace {

// ----------------------------------------------------------------------------- the model
// Every struct is mirrored by a ctypes.Structure in pack.py (pointers as void*).

template <typename T>
struct Linear {  // y[o][m][k] = sum_i x[l_o^2 + m][i] W_o[i][k], one matrix per output order
    int32_t n_orders;
    const int32_t* order_l;   // (n_orders,)
    const int32_t* c_out;     // (n_orders,) output channels of each order
    int32_t c_in;             // input channels of every order
    int32_t dim_out;          // sum_o (2 l_o + 1) c_out[o]
    const T* weight;          // per order, c_in x c_out, concatenated
};

template <typename T>
struct Mlp {  // out = W2 silu(W1 in + b1) + b2
    int32_t n_in, n_hidden, n_out;
    const T *w1, *b1;  // w1: n_hidden x n_in (torch.nn.Linear's layout)
    const T *w2t, *b2;  // w2t: n_hidden x n_out, W2 transposed: the long output rows are contiguous
};

template <typename T>
struct Paths {  // the non-zero Clebsch-Gordan coefficients of a tensor product, with path weights,
                // grouped by row: one row per (path, output component M)
    int32_t n_rows, n_paths, dim_2;  // dim_2: components of the second input (the harmonics of "uvu")
    const int32_t* row_start;  // (n_rows + 1,) first entry of each row
    const int32_t* row_path;   // (n_rows,) the row's path: its weights are w[path * channels + u]
    const int32_t* row_out;    // (n_rows,) the row's output component
    const int32_t* row_sign;   // (n_rows,) (-1)^l2 of the row's path (Y_l2(-u) = (-1)^l2 Y_l2(u))
    const int32_t *c1, *c2;    // per entry: components of the two inputs
    const T* coef;
};

template <typename T>
struct BlockMap {  // one kind of AO block from a linear map of pair or atom features
    Linear<T> linear;  // features (64 channels) -> one 1 x L irrep per Clebsch-Gordan path
    int32_t n_rows, n_cols, n_entries;
    const int32_t* entry_block;  // r * n_cols + c in the block
    const int32_t* entry_f;      // position in the linear map's output
    const T* entry_coef;
};

template <typename T>
struct Interaction {
    Linear<T> pre, post, out;
    Mlp<T> radial;
    Paths<T> paths;  // "uvu": features (x) harmonics
    int32_t n_scalars, n_gates;
    T scale_scalars, scale_gates, inv_avg_neighbors;
};

template <typename T>
struct Head {
    Linear<T> pair_a, pair_b, pair_c, diag_a, diag_b;
    Mlp<T> radial;           // per pair: the pair product's weights, then the harmonic product's
    Paths<T> pair_paths;     // "uuu"
    Paths<T> sh_paths;       // "uvu"
    Paths<T> diag_paths;     // "uuu", shared weights
    const T* diag_weight;    // (n_paths, channels)
    const BlockMap<T>* diag;      // per element
    const BlockMap<T>* off;       // per element pair, row-major
    const T* const* reference;    // per element, n_i x n_i (added as 0.5 ref before M + M^T)
};

template <typename T>
struct Model {
    int32_t channels, lmax, n_radial, n_elements, n_interactions, n_heads;
    const T* embedding;     // (n_elements, channels)
    T alpha, cutoff;        // radial basis: decay (1/Bohr) and cutoff (Bohr)
    const T* log_binom;     // (n_radial,)
    const T* sh_coef;       // (sum_l 3^l, (lmax+1)^2): harmonics from the tensor powers of u
    const int32_t* n_ao;    // (n_elements,)
    const Interaction<T>* interactions;
    const Head<T>* heads;
    const Mlp<T>* energy_readout;  // null, or the learned per-atom energy from the scalar channels
    T energy_scale;                // Hartree per unit of the readout's output
};

template <typename T>
struct Batch {  // molecules as a graph, as ase_phisnet.model.graph.MolecularGraph
    int32_t n_atoms, n_edges, n_molecules, n_max;
    const T* positions;        // (n_atoms, 3), Bohr
    const int32_t* element;    // (n_atoms,) index into the model's elements
    const int32_t* molecule;   // (n_atoms,)
    const int32_t* ao_offset;  // (n_atoms,) first AO within its molecule (irreps order)
    const int32_t *src, *dst;  // (n_edges,) ordered pairs i = src, j = dst
};

// ----------------------------------------------------------------------------- kernels
template <typename T>
inline T sigmoid(T x) { return T(1) / (T(1) + std::exp(-x)); }

// A strided view of feature rows: row r, component c, channel u at p[r * row + c * comp + u].
template <typename T>
struct View {
    T* p;
    long row, comp;
    T* at(long r, long c) const { return p + r * row + c * comp; }
};

constexpr int MAX_CHANNELS = 256;
constexpr int MAX_HARMONICS = 81;  // components of the harmonics up to l = 8

// With the channel count CT known at compile time, a row's channels are CT / lanes vectors of the
// GCC/Clang vector extension (32 bytes: 4 doubles or 8 floats), which stay in registers; the
// loops below are then over whole vectors (Simd<T>::V, ../equivariant/simd.h). Other channel counts
// take the plain loops after them.

template <typename T, int CT>
constexpr bool vectorized() { return CT > 0 && (CT * sizeof(T)) % 32 == 0 && CT <= MAX_CHANNELS; }

template <typename T>
inline T lane_sum(typename Simd<T>::V v) {
    T s = 0;
    for (int l = 0; l < int(32 / sizeof(T)); ++l) s += v[l];
    return s;
}

// Dense maps, y = x W, in tiles of TILE output channels that stay in registers (TILE / lanes
// vectors) while the inputs stream past: each weight is read once per input row. A tile that
// does not fill TILE channels (a block map's few outputs) takes the plain loop.
constexpr int TILE = 32;

// y[k] = y0[k] + sum_i x[i] W[i * w_row + k] for k in [k0, k1), k1 - k0 <= TILE (y0 null: zero)
template <typename T>
inline void matvec_tile(const T* x, int n, const T* W, long w_row, int k0, int k1, const T* y0, T* y) {
    using V = typename Simd<T>::V;
    constexpr int LANES = 32 / sizeof(T), NV = TILE / LANES;
    if (k1 - k0 == TILE) {
        V acc[NV];
        for (int v = 0; v < NV; ++v) acc[v] = y0 ? *reinterpret_cast<const V*>(y0 + k0 + v * LANES) : V{};
        for (int i = 0; i < n; ++i) {
            const T xi = x[i];
            const V* w = reinterpret_cast<const V*>(W + i * w_row + k0);
#pragma GCC unroll 8
            for (int v = 0; v < NV; ++v) acc[v] += xi * w[v];
        }
        for (int v = 0; v < NV; ++v) *reinterpret_cast<V*>(y + k0 + v * LANES) = acc[v];
        return;
    }
    T acc[TILE];
    for (int k = k0; k < k1; ++k) acc[k - k0] = y0 ? y0[k] : T(0);
    for (int i = 0; i < n; ++i)
        for (int k = k0; k < k1; ++k) acc[k - k0] += x[i] * W[i * w_row + k];
    for (int k = k0; k < k1; ++k) y[k] = acc[k - k0];
}

// s[j] += sum_{k in [k0, k1)} W[j * w_row + k] g[k] for j < n: the transpose of matvec_tile,
// four rows of W at a time (independent sums), k1 - k0 <= TILE
template <typename T>
inline void dot_tile(const T* g, int k0, int k1, const T* W, long w_row, int n, T* s) {
    using V = typename Simd<T>::V;
    constexpr int LANES = 32 / sizeof(T), NV = TILE / LANES;
    if (k1 - k0 == TILE) {
        V gv[NV];
        for (int v = 0; v < NV; ++v) gv[v] = *reinterpret_cast<const V*>(g + k0 + v * LANES);
        int j = 0;
        for (; j + 4 <= n; j += 4) {
            const V* w0 = reinterpret_cast<const V*>(W + j * w_row + k0);
            const V* w1 = reinterpret_cast<const V*>(W + (j + 1) * w_row + k0);
            const V* w2 = reinterpret_cast<const V*>(W + (j + 2) * w_row + k0);
            const V* w3 = reinterpret_cast<const V*>(W + (j + 3) * w_row + k0);
            V d0 = {}, d1 = {}, d2 = {}, d3 = {};
#pragma GCC unroll 8
            for (int v = 0; v < NV; ++v) {
                d0 += w0[v] * gv[v];
                d1 += w1[v] * gv[v];
                d2 += w2[v] * gv[v];
                d3 += w3[v] * gv[v];
            }
            s[j] += lane_sum<T>(d0);
            s[j + 1] += lane_sum<T>(d1);
            s[j + 2] += lane_sum<T>(d2);
            s[j + 3] += lane_sum<T>(d3);
        }
        for (; j < n; ++j) {
            const V* w = reinterpret_cast<const V*>(W + j * w_row + k0);
            V d = {};
            for (int v = 0; v < NV; ++v) d += w[v] * gv[v];
            s[j] += lane_sum<T>(d);
        }
        return;
    }
    for (int j = 0; j < n; ++j) {
        T d = 0;
        for (int k = k0; k < k1; ++k) d += W[j * w_row + k] * g[k];
        s[j] += d;
    }
}

template <typename T>
void linear_forward(const Linear<T>& L, long rows, View<const T> x, T* y, long y_row) {
    for (long r = 0; r < rows; ++r) {
        const T* W = L.weight;
        T* out = y + r * y_row;
        for (int o = 0; o < L.n_orders; ++o) {
            const int l = L.order_l[o], k_out = L.c_out[o];
            for (int m = 0; m < 2 * l + 1; ++m, out += k_out)
                for (int k0 = 0; k0 < k_out; k0 += TILE) matvec_tile(x.at(r, l * l + m), L.c_in, W, k_out, k0, std::min(k0 + TILE, k_out), (const T*)nullptr, out);
            W += (long)L.c_in * k_out;
        }
    }
}

// x_bar += y_bar W^T
template <typename T>
void linear_backward(const Linear<T>& L, long rows, const T* y_bar, long y_row, View<T> x_bar) {
    for (long r = 0; r < rows; ++r) {
        const T* W = L.weight;
        const T* g = y_bar + r * y_row;
        for (int o = 0; o < L.n_orders; ++o) {
            const int l = L.order_l[o], k_out = L.c_out[o];
            for (int m = 0; m < 2 * l + 1; ++m, g += k_out)
                for (int k0 = 0; k0 < k_out; k0 += TILE) dot_tile(g, k0, std::min(k0 + TILE, k_out), W, k_out, L.c_in, x_bar.at(r, l * l + m));
            W += (long)L.c_in * k_out;
        }
    }
}

// The radial MLPs run on every pair at once, the output layer tile by tile: a tile of W2 (n_hidden
// x TILE) stays in the cache for all pairs instead of the whole matrix streaming past each pair.
template <typename T>
void mlp_forward(const Mlp<T>& M, long rows, const T* in, T* hidden_pre, T* out) {
    std::vector<T> h(rows * M.n_hidden);
    for (long r = 0; r < rows; ++r) {
        const T* x = in + r * M.n_in;
        T* z = hidden_pre + r * M.n_hidden;
        for (int j = 0; j < M.n_hidden; ++j) {
            T s = M.b1[j];
            for (int i = 0; i < M.n_in; ++i) s += M.w1[(long)j * M.n_in + i] * x[i];
            z[j] = s;
            h[r * M.n_hidden + j] = s * sigmoid(s);
        }
    }
    for (int k0 = 0; k0 < M.n_out; k0 += TILE)
        for (long r = 0; r < rows; ++r) matvec_tile(&h[r * M.n_hidden], M.n_hidden, M.w2t, M.n_out, k0, std::min(k0 + TILE, M.n_out), M.b2, out + r * M.n_out);
}

template <typename T>
void mlp_backward(const Mlp<T>& M, long rows, const T* hidden_pre, const T* out_bar, T* in_bar) {
    std::vector<T> s(rows * M.n_hidden, T(0));  // dL/dh
    for (int k0 = 0; k0 < M.n_out; k0 += TILE)
        for (long r = 0; r < rows; ++r) dot_tile(out_bar + r * M.n_out, k0, std::min(k0 + TILE, M.n_out), M.w2t, M.n_out, M.n_hidden, &s[r * M.n_hidden]);
    for (long r = 0; r < rows; ++r) {
        const T* z = hidden_pre + r * M.n_hidden;
        T* gx = in_bar + r * M.n_in;
        for (int j = 0; j < M.n_hidden; ++j) {
            const T sg = sigmoid(z[j]);
            const T g = s[r * M.n_hidden + j] * sg * (T(1) + z[j] * (T(1) - sg));  // silu'
            for (int i = 0; i < M.n_in; ++i) gx[i] += M.w1[(long)j * M.n_in + i] * g;
        }
    }
}

// The products, one row (a pair or an atom) at a time. Inputs are component-major rows:
// component c at x + c * x_comp, its channels contiguous. Per path row (path p, output M):
//     harmonic ("uvu", y one channel):  out[M][u] += w[p][u] * sum_k coef_k y[c2_k] x[c1_k][u]
//     channel  ("uuu"):                 out[M][u] += w[p][u] * sum_k coef_k a[c1_k][u] b[c2_k][u]
// so that each coefficient costs one or two multiply-adds per channel, and the weights one per row.
template <typename T, int CT>
void harmonic_row_simd(const Paths<T>& P, const T* x, long x_comp, const T* y, const T* w, T* out, long out_comp, T* out_reversed) {
    using V = typename Simd<T>::V;
    constexpr int NV = CT * sizeof(T) / 32;
    for (int r = 0; r < P.n_rows; ++r) {
        V t[NV] = {};
        for (int k = P.row_start[r]; k < P.row_start[r + 1]; ++k) {
            const T s = P.coef[k] * y[P.c2[k]];
            const V* xk = reinterpret_cast<const V*>(x + P.c1[k] * x_comp);
#pragma GCC unroll 16
            for (int i = 0; i < NV; ++i) t[i] += s * xk[i];
        }
        const V* wp = reinterpret_cast<const V*>(w + (long)P.row_path[r] * CT);
        V* o = reinterpret_cast<V*>(out + P.row_out[r] * out_comp);
#pragma GCC unroll 16
        for (int i = 0; i < NV; ++i) t[i] *= wp[i];
#pragma GCC unroll 16
        for (int i = 0; i < NV; ++i) o[i] += t[i];
        if (out_reversed) {
            V* o2 = reinterpret_cast<V*>(out_reversed + P.row_out[r] * out_comp);
            const T sign = P.row_sign[r];
#pragma GCC unroll 16
            for (int i = 0; i < NV; ++i) o2[i] += sign * t[i];
        }
    }
}

template <typename T, int CT>
void harmonic_row_backward_simd(const Paths<T>& P, const T* x, long x_comp, const T* y, const T* w, const T* g, long g_comp, const T* g_reversed, T* x_bar,
                                T* y_bar, T* w_bar) {
    using V = typename Simd<T>::V;
    constexpr int NV = CT * sizeof(T) / 32;
    V dy[MAX_HARMONICS] = {};  // dL/dy per component, in lanes: summed across the lanes once, at the end
    for (int r = 0; r < P.n_rows; ++r) {
        V ge[NV], gw[NV], t[NV] = {};
        const V* gp = reinterpret_cast<const V*>(g + P.row_out[r] * g_comp);
        const V* wp = reinterpret_cast<const V*>(w + (long)P.row_path[r] * CT);
#pragma GCC unroll 16
        for (int i = 0; i < NV; ++i) ge[i] = gp[i];
        if (g_reversed) {
            const V* g2 = reinterpret_cast<const V*>(g_reversed + P.row_out[r] * g_comp);
            const T sign = P.row_sign[r];
#pragma GCC unroll 16
            for (int i = 0; i < NV; ++i) ge[i] += sign * g2[i];
        }
#pragma GCC unroll 16
        for (int i = 0; i < NV; ++i) gw[i] = wp[i] * ge[i];
        for (int k = P.row_start[r]; k < P.row_start[r + 1]; ++k) {
            const T coef = P.coef[k], s = coef * y[P.c2[k]];
            const V* xk = reinterpret_cast<const V*>(x + P.c1[k] * x_comp);
            V* xb = reinterpret_cast<V*>(x_bar + P.c1[k] * x_comp);
            V d[2] = {};  // two sums: half the chain of dependent additions
#pragma GCC unroll 16
            for (int i = 0; i < NV; ++i) {
                t[i] += s * xk[i];
                xb[i] += s * gw[i];
                d[i & 1] += xk[i] * gw[i];
            }
            dy[P.c2[k]] += coef * (d[0] + d[1]);
        }
        V* wb = reinterpret_cast<V*>(w_bar + (long)P.row_path[r] * CT);
#pragma GCC unroll 16
        for (int i = 0; i < NV; ++i) wb[i] += ge[i] * t[i];
    }
    for (int c = 0; c < P.dim_2; ++c) y_bar[c] += lane_sum<T>(dy[c]);
}

template <typename T, int CT>
void channel_row_simd(const Paths<T>& P, const T* a, long a_comp, const T* b, long b_comp, const T* w, T* out, long out_comp) {
    using V = typename Simd<T>::V;
    constexpr int NV = CT * sizeof(T) / 32;
    for (int r = 0; r < P.n_rows; ++r) {
        V t[NV] = {};
        for (int k = P.row_start[r]; k < P.row_start[r + 1]; ++k) {
            const T coef = P.coef[k];
            const V* ak = reinterpret_cast<const V*>(a + P.c1[k] * a_comp);
            const V* bk = reinterpret_cast<const V*>(b + P.c2[k] * b_comp);
#pragma GCC unroll 16
            for (int i = 0; i < NV; ++i) t[i] += coef * (ak[i] * bk[i]);
        }
        const V* wp = reinterpret_cast<const V*>(w + (long)P.row_path[r] * CT);
        V* o = reinterpret_cast<V*>(out + P.row_out[r] * out_comp);
#pragma GCC unroll 16
        for (int i = 0; i < NV; ++i) o[i] += wp[i] * t[i];
    }
}

template <typename T, int CT>
void channel_row_backward_simd(const Paths<T>& P, const T* a, long a_comp, const T* b, long b_comp, const T* w, const T* g, long g_comp, T* a_bar, T* b_bar,
                               T* w_bar) {
    using V = typename Simd<T>::V;
    constexpr int NV = CT * sizeof(T) / 32;
    for (int r = 0; r < P.n_rows; ++r) {
        V gw[NV], t[NV] = {};
        const V* gp = reinterpret_cast<const V*>(g + P.row_out[r] * g_comp);
        const V* wp = reinterpret_cast<const V*>(w + (long)P.row_path[r] * CT);
#pragma GCC unroll 16
        for (int i = 0; i < NV; ++i) gw[i] = wp[i] * gp[i];
        for (int k = P.row_start[r]; k < P.row_start[r + 1]; ++k) {
            const T coef = P.coef[k];
            const V* ak = reinterpret_cast<const V*>(a + P.c1[k] * a_comp);
            const V* bk = reinterpret_cast<const V*>(b + P.c2[k] * b_comp);
            V* ab = reinterpret_cast<V*>(a_bar + P.c1[k] * a_comp);
            V* bb = reinterpret_cast<V*>(b_bar + P.c2[k] * b_comp);
#pragma GCC unroll 16
            for (int i = 0; i < NV; ++i) {
                const V q = coef * gw[i];
                ab[i] += q * bk[i];
                bb[i] += q * ak[i];
                t[i] += coef * (ak[i] * bk[i]);
            }
        }
        if (w_bar) {
            V* wb = reinterpret_cast<V*>(w_bar + (long)P.row_path[r] * CT);
#pragma GCC unroll 16
            for (int i = 0; i < NV; ++i) wb[i] += gp[i] * t[i];
        }
    }
}

template <typename T, int CT>
void harmonic_row(const Paths<T>& P, int C_runtime, const T* x, long x_comp, const T* y, const T* w, T* out, long out_comp, T* out_reversed) {
    if constexpr (vectorized<T, CT>()) return harmonic_row_simd<T, CT>(P, x, x_comp, y, w, out, out_comp, out_reversed);
    const int C = CT > 0 ? CT : C_runtime;
    // out_reversed (or null): the same product for the reversed pair, whose harmonics are (-1)^l Y
    T t[MAX_CHANNELS];
    for (int r = 0; r < P.n_rows; ++r) {
                for (int u = 0; u < C; ++u) t[u] = 0;
        for (int k = P.row_start[r]; k < P.row_start[r + 1]; ++k) {
            const T s = P.coef[k] * y[P.c2[k]];
            const T* __restrict xk = x + P.c1[k] * x_comp;
                        for (int u = 0; u < C; ++u) t[u] += s * xk[u];
        }
        const T* __restrict wp = w + (long)P.row_path[r] * C;
        T* __restrict o = out + P.row_out[r] * out_comp;
                for (int u = 0; u < C; ++u) o[u] += wp[u] * t[u];
        if (out_reversed) {
            T* __restrict o2 = out_reversed + P.row_out[r] * out_comp;
            const T sign = P.row_sign[r];
                        for (int u = 0; u < C; ++u) o2[u] += sign * wp[u] * t[u];
        }
    }
}

template <typename T, int CT>
void harmonic_row_backward(const Paths<T>& P, int C_runtime, const T* x, long x_comp, const T* y, const T* w, const T* g, long g_comp, const T* g_reversed,
                           T* x_bar, T* y_bar, T* w_bar) {
    if constexpr (vectorized<T, CT>()) return harmonic_row_backward_simd<T, CT>(P, x, x_comp, y, w, g, g_comp, g_reversed, x_bar, y_bar, w_bar);
    const int C = CT > 0 ? CT : C_runtime;
    T t[MAX_CHANNELS], ge[MAX_CHANNELS], gw[MAX_CHANNELS];
    for (int r = 0; r < P.n_rows; ++r) {
        const T* __restrict gp = g + P.row_out[r] * g_comp;
        const T* __restrict wp = w + (long)P.row_path[r] * C;
        if (g_reversed) {
            const T* __restrict g2 = g_reversed + P.row_out[r] * g_comp;
            const T sign = P.row_sign[r];
                        for (int u = 0; u < C; ++u) ge[u] = gp[u] + sign * g2[u];
        } else {
                        for (int u = 0; u < C; ++u) ge[u] = gp[u];
        }
                for (int u = 0; u < C; ++u) {
            gw[u] = wp[u] * ge[u];
            t[u] = 0;
        }
        for (int k = P.row_start[r]; k < P.row_start[r + 1]; ++k) {
            const T coef = P.coef[k], s = coef * y[P.c2[k]];
            const T* __restrict xk = x + P.c1[k] * x_comp;
            T* __restrict xb = x_bar + P.c1[k] * x_comp;
            T d = 0;
                        for (int u = 0; u < C; ++u) {
                t[u] += s * xk[u];
                xb[u] += s * gw[u];
                d += xk[u] * gw[u];
            }
            y_bar[P.c2[k]] += coef * d;
        }
        T* __restrict wb = w_bar + (long)P.row_path[r] * C;
                for (int u = 0; u < C; ++u) wb[u] += ge[u] * t[u];
    }
}

template <typename T, int CT>
void channel_row(const Paths<T>& P, int C_runtime, const T* a, long a_comp, const T* b, long b_comp, const T* w, T* out, long out_comp) {
    if constexpr (vectorized<T, CT>()) return channel_row_simd<T, CT>(P, a, a_comp, b, b_comp, w, out, out_comp);
    const int C = CT > 0 ? CT : C_runtime;
    T t[MAX_CHANNELS];
    for (int r = 0; r < P.n_rows; ++r) {
                for (int u = 0; u < C; ++u) t[u] = 0;
        for (int k = P.row_start[r]; k < P.row_start[r + 1]; ++k) {
            const T coef = P.coef[k];
            const T* __restrict ak = a + P.c1[k] * a_comp;
            const T* __restrict bk = b + P.c2[k] * b_comp;
                        for (int u = 0; u < C; ++u) t[u] += coef * ak[u] * bk[u];
        }
        const T* __restrict wp = w + (long)P.row_path[r] * C;
        T* __restrict o = out + P.row_out[r] * out_comp;
                for (int u = 0; u < C; ++u) o[u] += wp[u] * t[u];
    }
}

template <typename T, int CT>
void channel_row_backward(const Paths<T>& P, int C_runtime, const T* a, long a_comp, const T* b, long b_comp, const T* w, const T* g, long g_comp, T* a_bar,
                          T* b_bar, T* w_bar /* null: shared weights, not differentiated */) {
    if constexpr (vectorized<T, CT>()) return channel_row_backward_simd<T, CT>(P, a, a_comp, b, b_comp, w, g, g_comp, a_bar, b_bar, w_bar);
    const int C = CT > 0 ? CT : C_runtime;
    T t[MAX_CHANNELS], gw[MAX_CHANNELS];
    for (int r = 0; r < P.n_rows; ++r) {
        const T* __restrict gp = g + P.row_out[r] * g_comp;
        const T* __restrict wp = w + (long)P.row_path[r] * C;
                for (int u = 0; u < C; ++u) {
            gw[u] = wp[u] * gp[u];
            t[u] = 0;
        }
        for (int k = P.row_start[r]; k < P.row_start[r + 1]; ++k) {
            const T coef = P.coef[k];
            const T* __restrict ak = a + P.c1[k] * a_comp;
            const T* __restrict bk = b + P.c2[k] * b_comp;
            T* __restrict ab = a_bar + P.c1[k] * a_comp;
            T* __restrict bb = b_bar + P.c2[k] * b_comp;
                        for (int u = 0; u < C; ++u) {
                const T q = coef * gw[u];
                ab[u] += q * bk[u];
                bb[u] += q * ak[u];
                t[u] += coef * ak[u] * bk[u];
            }
        }
        if (w_bar) {
            T* __restrict wb = w_bar + (long)P.row_path[r] * C;
                        for (int u = 0; u < C; ++u) wb[u] += gp[u] * t[u];
        }
    }
}

// ----------------------------------------------------------------------------- geometry
// Harmonics Y_c(u) = sum_q powers_q(u) sh_coef[q][c], powers = 1, u, u (x) u, ...
inline int n_powers(int lmax) {
    int n = 0, p = 1;
    for (int l = 0; l <= lmax; ++l, p *= 3) n += p;
    return n;
}

template <typename T>
void tensor_powers(const T* u, int lmax, T* P, T* dP /* (n_powers, 3) or null */) {
    P[0] = 1;
    if (dP) dP[0] = dP[1] = dP[2] = 0;
    int prev = 0, size = 1, next = 1;
    for (int l = 1; l <= lmax; ++l) {
        for (int i = 0; i < size; ++i)
            for (int j = 0; j < 3; ++j) {
                const int q = next + i * 3 + j;
                P[q] = P[prev + i] * u[j];
                if (dP)
                    for (int k = 0; k < 3; ++k) dP[q * 3 + k] = dP[(prev + i) * 3 + k] * u[j] + (j == k ? P[prev + i] : T(0));
            }
        prev = next;
        next += size * 3;
        size *= 3;
    }
}

template <typename T>
struct Geometry {  // per edge: harmonics, radial basis and what their derivatives need
    std::vector<T> sh, rbf, unit, dist;
};

template <typename T>
void edge_geometry(const Model<T>& M, const Batch<T>& B, Geometry<T>& G) {
    const int D = (M.lmax + 1) * (M.lmax + 1), K = M.n_radial, nq = n_powers(M.lmax);
    G.sh.assign((long)B.n_edges * D, 0);
    G.rbf.assign((long)B.n_edges * K, 0);
    G.unit.assign((long)B.n_edges * 3, 0);
    G.dist.assign(B.n_edges, 0);
    std::vector<T> P(nq);
    const T rc = M.cutoff;
    for (long e = 0; e < B.n_edges; ++e) {
        const T* ri = B.positions + 3L * B.src[e];
        const T* rj = B.positions + 3L * B.dst[e];
        T v[3] = {rj[0] - ri[0], rj[1] - ri[1], rj[2] - ri[2]};
        const T r = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
        T* u = &G.unit[3 * e];
        for (int k = 0; k < 3; ++k) u[k] = v[k] / r;
        G.dist[e] = r;
        tensor_powers(u, M.lmax, P.data(), (T*)nullptr);
        T* y = &G.sh[e * D];
        for (int q = 0; q < nq; ++q)
            for (int c = 0; c < D; ++c) y[c] += P[q] * M.sh_coef[(long)q * D + c];
        T* b = &G.rbf[e * K];
        if (r < rc) {
            const T log_x = -M.alpha * r, log_1mx = std::log(-std::expm1(log_x));
            const T cut = std::exp(-(r * r) / ((rc - r) * (rc + r)));
            for (int k = 0; k < K; ++k) b[k] = std::exp(M.log_binom[k] + k * log_x + (K - 1 - k) * log_1mx) * cut;
        }
    }
}

// d/dpositions from d/dsh and d/drbf of every edge
template <typename T>
void edge_geometry_backward(const Model<T>& M, const Batch<T>& B, const Geometry<T>& G, const T* sh_bar, const T* rbf_bar, T* pos_bar) {
    const int D = (M.lmax + 1) * (M.lmax + 1), K = M.n_radial, nq = n_powers(M.lmax);
    std::vector<T> P(nq), dP(3L * nq);
    const T rc = M.cutoff;
    for (long e = 0; e < B.n_edges; ++e) {
        const T* u = &G.unit[3 * e];
        const T r = G.dist[e];
        tensor_powers(u, M.lmax, P.data(), dP.data());
        T u_bar[3] = {0, 0, 0};
        const T* gy = sh_bar + e * D;
        for (int q = 0; q < nq; ++q) {
            T pq = 0;
            for (int c = 0; c < D; ++c) pq += M.sh_coef[(long)q * D + c] * gy[c];
            for (int k = 0; k < 3; ++k) u_bar[k] += pq * dP[q * 3 + k];
        }
        T r_bar = 0;
        if (r < rc) {
            const T* b = &G.rbf[e * K];
            const T* gb = rbf_bar + e * K;
            // d log b_k / dr = -alpha k + (K-1-k) alpha / expm1(alpha r) + d log f_cut / dr
            const T a = M.alpha, ratio = a / std::expm1(a * r);
            const T dcut = -2 * r * rc * rc / ((rc * rc - r * r) * (rc * rc - r * r));
            for (int k = 0; k < K; ++k) r_bar += gb[k] * b[k] * (-a * k + (K - 1 - k) * ratio + dcut);
        }
        // u = v / r: dv = (du - u (u . du)) / r; r = |v|: dv = u dr
        const T ud = u[0] * u_bar[0] + u[1] * u_bar[1] + u[2] * u_bar[2];
        T* gi = pos_bar + 3L * B.src[e];
        T* gj = pos_bar + 3L * B.dst[e];
        for (int k = 0; k < 3; ++k) {
            const T v_bar = (u_bar[k] - u[k] * ud) / r + r_bar * u[k];
            gj[k] += v_bar;
            gi[k] -= v_bar;
        }
    }
}

// ----------------------------------------------------------------------------- the engine
// Pairs: the graph holds both (i, j) and (j, i) of every pair within the cutoff. They share the
// distance, so the radial MLPs run once per pair, and the head's (c_i + c_j) (x) Y product runs
// once per pair for both directions (Y(-u) = (-1)^l Y(u), exactly).

template <typename T>
struct InteractionState {  // what the backward needs of one interaction
    std::vector<T> pre, hidden, weights, gate_in;
};

template <typename T>
struct HeadState {
    std::vector<T> a, b, c, s, da, db, hidden, weights, f_pair, f_diag;
};

template <typename T>
struct Engine {
    const Model<T>* model;
    Batch<T> batch;
    std::vector<int32_t> src, dst, element, molecule, ao_offset;
    std::vector<int32_t> pair_edge;  // (n_pairs, 2): the edge i -> j with i < j, then j -> i
    std::vector<int32_t> edge_pair;  // (n_edges,) the pair of each edge
    std::vector<T> positions, pair_rbf;
    Geometry<T> geometry;
    std::vector<T> x;  // atom features after the last interaction
    std::vector<InteractionState<T>> interactions;
    std::vector<HeadState<T>> heads;
    std::vector<T> readout_in, readout_hidden;  // the energy readout's input rows and pre-activations
    bool has_forward = false;
};

template <typename T>
long feature_dim(const Model<T>& M) { return (long)(M.lmax + 1) * (M.lmax + 1) * M.channels; }

inline int order_of(int c) { return (int)std::sqrt((double)c + 0.5); }

template <typename T>
void gate_forward(const Interaction<T>& I, int C, int D, const T* q, T* g) {
    // scalars: silu; component c of order l >= 1, channel u: times sigmoid(gate (l - 1) C + u)
    for (int u = 0; u < I.n_scalars; ++u) g[u] = q[u] * sigmoid(q[u]) * I.scale_scalars;
    const T* gates = q + I.n_scalars;
    const T* vec = q + I.n_scalars + I.n_gates;  // components 1.. of the gated irreps, C each
    for (int c = 1; c < D; ++c) {
        const int l = order_of(c);
        for (int u = 0; u < C; ++u) g[c * C + u] = vec[(c - 1) * C + u] * sigmoid(gates[(l - 1) * C + u]) * I.scale_gates;
    }
}

template <typename T>
void gate_backward(const Interaction<T>& I, int C, int D, const T* q, const T* g_bar, T* q_bar) {
    for (int u = 0; u < I.n_scalars; ++u) {
        const T sg = sigmoid(q[u]);
        q_bar[u] = g_bar[u] * I.scale_scalars * sg * (T(1) + q[u] * (T(1) - sg));
    }
    const T* gates = q + I.n_scalars;
    const T* vec = q + I.n_scalars + I.n_gates;
    T* gates_bar = q_bar + I.n_scalars;
    T* vec_bar = q_bar + I.n_scalars + I.n_gates;
    for (int k = 0; k < I.n_gates; ++k) gates_bar[k] = 0;
    for (int c = 1; c < D; ++c) {
        const int l = order_of(c);
        for (int u = 0; u < C; ++u) {
            const int k = (l - 1) * C + u;
            const T sg = sigmoid(gates[k]);
            vec_bar[(c - 1) * C + u] = g_bar[c * C + u] * sg * I.scale_gates;
            gates_bar[k] += g_bar[c * C + u] * vec[(c - 1) * C + u] * I.scale_gates * sg * (T(1) - sg);
        }
    }
}

template <typename T, int CT>
void forward(Engine<T>& E, T* const* matrices) {
    const Model<T>& M = *E.model;
    const Batch<T>& B = E.batch;
    const int C = CT > 0 ? CT : M.channels, D = (M.lmax + 1) * (M.lmax + 1), K = M.n_radial;
    const long N = B.n_atoms, NE = B.n_edges, NP = NE / 2, F = feature_dim(M), n = B.n_max;
    edge_geometry(M, B, E.geometry);
    const T* sh = E.geometry.sh.data();
    E.pair_rbf.resize(NP * K);
    for (long p = 0; p < NP; ++p) std::memcpy(&E.pair_rbf[p * K], &E.geometry.rbf[(long)E.pair_edge[2 * p] * K], K * sizeof(T));

    // embedding: the scalars of each atom, zeros above
    std::vector<T>& x = E.x;
    x.assign(N * F, 0);
    for (long i = 0; i < N; ++i) std::memcpy(&x[i * F], M.embedding + (long)B.element[i] * C, C * sizeof(T));

    E.interactions.resize(M.n_interactions);
    std::vector<T> messages, summed, gated, update;
    for (int t = 0; t < M.n_interactions; ++t) {
        const Interaction<T>& I = M.interactions[t];
        InteractionState<T>& S = E.interactions[t];
        S.pre.assign(N * F, 0);
        linear_forward(I.pre, N, View<const T>{x.data(), F, C}, S.pre.data(), F);
        S.hidden.assign(NP * I.radial.n_hidden, 0);
        S.weights.assign(NP * I.radial.n_out, 0);
        mlp_forward(I.radial, NP, E.pair_rbf.data(), S.hidden.data(), S.weights.data());
        messages.assign(NE * F, 0);  // messages flow sender (dst) -> receiver (src)
        for (long e = 0; e < NE; ++e)
            harmonic_row<T, CT>(I.paths, C, &S.pre[(long)B.dst[e] * F], C, sh + e * D, &S.weights[(long)E.edge_pair[e] * I.radial.n_out], &messages[e * F], C, (T*)nullptr);
        summed.assign(N * F, 0);
        for (long e = 0; e < NE; ++e) {
            T* to = &summed[(long)B.src[e] * F];
            const T* from = &messages[e * F];
            for (long k = 0; k < F; ++k) to[k] += from[k];
        }
        for (auto& v : summed) v *= I.inv_avg_neighbors;
        const long dim_gate = I.post.dim_out;
        S.gate_in.assign(N * dim_gate, 0);
        linear_forward(I.post, N, View<const T>{summed.data(), F, C}, S.gate_in.data(), dim_gate);
        gated.assign(N * F, 0);
        for (long i = 0; i < N; ++i) gate_forward(I, C, D, &S.gate_in[i * dim_gate], &gated[i * F]);
        update.assign(N * F, 0);
        linear_forward(I.out, N, View<const T>{gated.data(), F, C}, update.data(), F);
        for (long k = 0; k < N * F; ++k) x[k] += update[k];
    }

    // the energy correction, matrices[n_heads] (one per molecule): sum over atoms of the readout
    // of the invariants q = [x^(0), |x^(1)|^2, ..., |x^(lmax)|^2] (per channel, summed over m)
    if (M.energy_readout) {
        const Mlp<T>& R = *M.energy_readout;
        const int L1 = M.lmax + 1;
        E.readout_in.assign(N * C * L1, 0);
        for (long i = 0; i < N; ++i) {
            T* q = &E.readout_in[i * C * L1];
            std::memcpy(q, &x[i * F], C * sizeof(T));
            for (int c = 1; c < D; ++c) {
                T* ql = q + order_of(c) * C;
                const T* xc = &x[i * F + c * C];
                for (int u = 0; u < C; ++u) ql[u] += xc[u] * xc[u];
            }
        }
        E.readout_hidden.assign(N * R.n_hidden, 0);
        std::vector<T> per_atom(N, 0);
        mlp_forward(R, N, E.readout_in.data(), E.readout_hidden.data(), per_atom.data());
        T* energies = matrices[M.n_heads];
        std::memset(energies, 0, sizeof(T) * B.n_molecules);
        for (long i = 0; i < N; ++i) energies[B.molecule[i]] += M.energy_scale * per_atom[i];
    }

    E.heads.resize(M.n_heads);
    const long F2 = 2 * F;  // pair and one-centre features: 2 C channels per component
    std::vector<T> f;
    for (int h = 0; h < M.n_heads; ++h) {
        const Head<T>& H = M.heads[h];
        HeadState<T>& S = E.heads[h];
        for (auto* v : {&S.a, &S.b, &S.c, &S.da, &S.db}) v->assign(N * F, 0);
        linear_forward(H.pair_a, N, View<const T>{x.data(), F, C}, S.a.data(), F);
        linear_forward(H.pair_b, N, View<const T>{x.data(), F, C}, S.b.data(), F);
        linear_forward(H.pair_c, N, View<const T>{x.data(), F, C}, S.c.data(), F);
        linear_forward(H.diag_a, N, View<const T>{x.data(), F, C}, S.da.data(), F);
        linear_forward(H.diag_b, N, View<const T>{x.data(), F, C}, S.db.data(), F);
        S.hidden.assign(NP * H.radial.n_hidden, 0);
        S.weights.assign(NP * H.radial.n_out, 0);
        mlp_forward(H.radial, NP, E.pair_rbf.data(), S.hidden.data(), S.weights.data());
        const long n_pair_w = (long)H.pair_paths.n_paths * C;
        // f_pair = [a_i (x) b_j | (c_i + c_j) (x) Y_ij], f_diag = [da_i (x) db_i | x_i]
        S.f_pair.assign(NE * F2, 0);
        for (long e = 0; e < NE; ++e)
            channel_row<T, CT>(H.pair_paths, C, &S.a[(long)B.src[e] * F], C, &S.b[(long)B.dst[e] * F], C, &S.weights[(long)E.edge_pair[e] * H.radial.n_out], &S.f_pair[e * F2], 2 * C);
        S.s.assign(NP * F, 0);
        for (long p = 0; p < NP; ++p) {
            const long e = E.pair_edge[2 * p], e_rev = E.pair_edge[2 * p + 1];
            T* sp = &S.s[p * F];
            for (long k = 0; k < F; ++k) sp[k] = S.c[(long)B.src[e] * F + k] + S.c[(long)B.dst[e] * F + k];
            harmonic_row<T, CT>(H.sh_paths, C, sp, C, sh + e * D, &S.weights[p * H.radial.n_out + n_pair_w], &S.f_pair[e * F2 + C], 2 * C, &S.f_pair[e_rev * F2 + C]);
        }
        S.f_diag.assign(N * F2, 0);
        for (long i = 0; i < N; ++i) {
            channel_row<T, CT>(H.diag_paths, C, &S.da[i * F], C, &S.db[i * F], C, H.diag_weight, &S.f_diag[i * F2], 2 * C);
            for (int c = 0; c < D; ++c) std::memcpy(&S.f_diag[i * F2 + c * 2 * C + C], &x[i * F + c * C], C * sizeof(T));
        }

        // blocks into M, then the matrix M + M^T
        T* out = matrices[h];
        std::memset(out, 0, sizeof(T) * B.n_molecules * n * n);
        auto place = [&](const BlockMap<T>& map, const T* features, long row0, long col0, T* mat) {
            f.assign(map.linear.dim_out, 0);
            linear_forward(map.linear, 1, View<const T>{features, F2, 2 * C}, f.data(), map.linear.dim_out);
            for (int k = 0; k < map.n_entries; ++k) {
                const int rc = map.entry_block[k], r = rc / map.n_cols, c = rc % map.n_cols;
                mat[(row0 + r) * n + col0 + c] += map.entry_coef[k] * f[map.entry_f[k]];
            }
        };
        for (long i = 0; i < N; ++i) {
            const int zi = B.element[i];
            T* mat = out + (long)B.molecule[i] * n * n;
            const long o = B.ao_offset[i], ni = M.n_ao[zi];
            place(H.diag[zi], &S.f_diag[i * F2], o, o, mat);
            const T* ref = H.reference[zi];
            for (long r = 0; r < ni; ++r)
                for (long c = 0; c < ni; ++c) mat[(o + r) * n + o + c] += T(0.5) * ref[r * ni + c];
        }
        for (long e = 0; e < NE; ++e) {
            const int i = B.src[e], j = B.dst[e];
            place(H.off[B.element[i] * M.n_elements + B.element[j]], &S.f_pair[e * F2], B.ao_offset[i], B.ao_offset[j], out + (long)B.molecule[i] * n * n);
        }
        for (long b = 0; b < B.n_molecules; ++b) {
            T* mat = out + b * n * n;
            for (long r = 0; r < n; ++r)
                for (long c = r; c < n; ++c) mat[r * n + c] = mat[c * n + r] = mat[r * n + c] + mat[c * n + r];
        }
    }
    E.has_forward = true;
}

template <typename T, int CT>
void backward(Engine<T>& E, const T* const* matrices_bar, T* pos_bar) {
    const Model<T>& M = *E.model;
    const Batch<T>& B = E.batch;
    const int C = CT > 0 ? CT : M.channels, D = (M.lmax + 1) * (M.lmax + 1), K = M.n_radial;
    const long N = B.n_atoms, NE = B.n_edges, NP = NE / 2, F = feature_dim(M), F2 = 2 * F, n = B.n_max;
    const T* sh = E.geometry.sh.data();
    // the pairs' radial gradients land on the first edge of each pair (both have the same distance)
    std::vector<T> sh_bar(NE * D, 0), pair_rbf_bar(NP * K, 0), x_bar(N * F, 0), radial_bar, f_bar;
    std::vector<T> f_pair_bar, f_diag_bar, da_bar, db_bar, a_bar, b_bar, s_bar, c_bar;

    for (int h = 0; h < M.n_heads; ++h) {
        const Head<T>& H = M.heads[h];
        HeadState<T>& S = E.heads[h];
        const T* G = matrices_bar[h];
        // H = M + M^T: dL/dM = G + G^T
        f_pair_bar.assign(NE * F2, 0);
        f_diag_bar.assign(N * F2, 0);
        auto take = [&](const BlockMap<T>& map, const T* g, long row0, long col0, T* features_bar) {
            f_bar.assign(map.linear.dim_out, 0);
            for (int k = 0; k < map.n_entries; ++k) {
                const int rc = map.entry_block[k], r = rc / map.n_cols, c = rc % map.n_cols;
                const long p = (row0 + r) * n + col0 + c, pt = (col0 + c) * n + row0 + r;
                f_bar[map.entry_f[k]] += map.entry_coef[k] * (g[p] + g[pt]);
            }
            linear_backward(map.linear, 1, f_bar.data(), map.linear.dim_out, View<T>{features_bar, F2, 2 * C});
        };
        for (long i = 0; i < N; ++i)
            take(H.diag[B.element[i]], G + (long)B.molecule[i] * n * n, B.ao_offset[i], B.ao_offset[i], &f_diag_bar[i * F2]);
        for (long e = 0; e < NE; ++e) {
            const int i = B.src[e], j = B.dst[e];
            take(H.off[B.element[i] * M.n_elements + B.element[j]], G + (long)B.molecule[i] * n * n, B.ao_offset[i], B.ao_offset[j], &f_pair_bar[e * F2]);
        }
        for (auto* v : {&da_bar, &db_bar, &a_bar, &b_bar, &c_bar}) v->assign(N * F, 0);
        s_bar.assign(NP * F, 0);
        // f_diag = [da (x) db | x]
        for (long i = 0; i < N; ++i) {
            for (int c = 0; c < D; ++c)
                for (int u = 0; u < C; ++u) x_bar[i * F + c * C + u] += f_diag_bar[i * F2 + c * 2 * C + C + u];
            channel_row_backward<T, CT>(H.diag_paths, C, &S.da[i * F], C, &S.db[i * F], C, H.diag_weight, &f_diag_bar[i * F2], 2 * C, &da_bar[i * F], &db_bar[i * F],
                                 (T*)nullptr);
        }
        // f_pair = [a_i (x) b_j | s (x) Y]
        radial_bar.assign(NP * H.radial.n_out, 0);
        const long n_pair_w = (long)H.pair_paths.n_paths * C;
        for (long e = 0; e < NE; ++e) {
            const long wrow = (long)E.edge_pair[e] * H.radial.n_out;
            channel_row_backward<T, CT>(H.pair_paths, C, &S.a[(long)B.src[e] * F], C, &S.b[(long)B.dst[e] * F], C, &S.weights[wrow], &f_pair_bar[e * F2], 2 * C,
                                 &a_bar[(long)B.src[e] * F], &b_bar[(long)B.dst[e] * F], &radial_bar[wrow]);
        }
        for (long p = 0; p < NP; ++p) {
            const long e = E.pair_edge[2 * p], e_rev = E.pair_edge[2 * p + 1];
            harmonic_row_backward<T, CT>(H.sh_paths, C, &S.s[p * F], C, sh + e * D, &S.weights[p * H.radial.n_out + n_pair_w], &f_pair_bar[e * F2 + C], 2 * C,
                                  &f_pair_bar[e_rev * F2 + C], &s_bar[p * F], &sh_bar[e * D], &radial_bar[p * H.radial.n_out + n_pair_w]);
            for (long k = 0; k < F; ++k) {
                c_bar[(long)B.src[e] * F + k] += s_bar[p * F + k];
                c_bar[(long)B.dst[e] * F + k] += s_bar[p * F + k];
            }
        }
        mlp_backward(H.radial, NP, S.hidden.data(), radial_bar.data(), pair_rbf_bar.data());
        linear_backward(H.pair_a, N, a_bar.data(), F, View<T>{x_bar.data(), F, C});
        linear_backward(H.pair_b, N, b_bar.data(), F, View<T>{x_bar.data(), F, C});
        linear_backward(H.pair_c, N, c_bar.data(), F, View<T>{x_bar.data(), F, C});
        linear_backward(H.diag_a, N, da_bar.data(), F, View<T>{x_bar.data(), F, C});
        linear_backward(H.diag_b, N, db_bar.data(), F, View<T>{x_bar.data(), F, C});
    }

    if (M.energy_readout) {  // matrices_bar[n_heads]: dL/d(energy correction) of each molecule
        const T* energies_bar = matrices_bar[M.n_heads];
        const int L1 = M.lmax + 1;
        std::vector<T> per_atom_bar(N), q_bar(N * C * L1, 0);
        for (long i = 0; i < N; ++i) per_atom_bar[i] = M.energy_scale * energies_bar[B.molecule[i]];
        mlp_backward(*M.energy_readout, N, E.readout_hidden.data(), per_atom_bar.data(), q_bar.data());
        for (long i = 0; i < N; ++i) {
            const T* g = &q_bar[i * C * L1];
            for (int u = 0; u < C; ++u) x_bar[i * F + u] += g[u];
            for (int c = 1; c < D; ++c) {
                const T* gl = g + order_of(c) * C;
                for (int u = 0; u < C; ++u) x_bar[i * F + c * C + u] += T(2) * E.x[i * F + c * C + u] * gl[u];
            }
        }
    }

    // interactions in reverse: x_{t+1} = x_t + out(gate(post(sum(tp(pre(x_t)[dst], Y, mlp(rbf))))))
    std::vector<T> gated_bar, gate_in_bar, summed_bar, pre_bar;
    for (int t = M.n_interactions - 1; t >= 0; --t) {
        const Interaction<T>& I = M.interactions[t];
        InteractionState<T>& S = E.interactions[t];
        const long dim_gate = I.post.dim_out;
        gated_bar.assign(N * F, 0);
        gate_in_bar.assign(N * dim_gate, 0);
        summed_bar.assign(N * F, 0);
        pre_bar.assign(N * F, 0);
        linear_backward(I.out, N, x_bar.data(), F, View<T>{gated_bar.data(), F, C});
        for (long i = 0; i < N; ++i) gate_backward(I, C, D, &S.gate_in[i * dim_gate], &gated_bar[i * F], &gate_in_bar[i * dim_gate]);
        linear_backward(I.post, N, gate_in_bar.data(), dim_gate, View<T>{summed_bar.data(), F, C});
        for (auto& v : summed_bar) v *= I.inv_avg_neighbors;
        radial_bar.assign(NP * I.radial.n_out, 0);
        for (long e = 0; e < NE; ++e) {
            const long wrow = (long)E.edge_pair[e] * I.radial.n_out;
            harmonic_row_backward<T, CT>(I.paths, C, &S.pre[(long)B.dst[e] * F], C, sh + e * D, &S.weights[wrow], &summed_bar[(long)B.src[e] * F], C, (const T*)nullptr,
                                  &pre_bar[(long)B.dst[e] * F], &sh_bar[e * D], &radial_bar[wrow]);
        }
        mlp_backward(I.radial, NP, S.hidden.data(), radial_bar.data(), pair_rbf_bar.data());
        linear_backward(I.pre, N, pre_bar.data(), F, View<T>{x_bar.data(), F, C});  // x_bar: residual + this
    }
    std::vector<T> rbf_bar(NE * K, 0);
    for (long p = 0; p < NP; ++p) std::memcpy(&rbf_bar[(long)E.pair_edge[2 * p] * K], &pair_rbf_bar[p * K], K * sizeof(T));
    std::memset(pos_bar, 0, sizeof(T) * 3 * N);
    edge_geometry_backward(M, B, E.geometry, sh_bar.data(), rbf_bar.data(), pos_bar);
}

// The batch's arrays are copied (the caller's may go after the forward call) and its edges
// matched into pairs. Returns false when an edge has no reverse (the graph is not symmetric).
template <typename T>
bool set_batch(Engine<T>& E, const Batch<T>& b) {
    E.src.assign(b.src, b.src + b.n_edges);
    E.dst.assign(b.dst, b.dst + b.n_edges);
    E.element.assign(b.element, b.element + b.n_atoms);
    E.molecule.assign(b.molecule, b.molecule + b.n_atoms);
    E.ao_offset.assign(b.ao_offset, b.ao_offset + b.n_atoms);
    E.positions.assign(b.positions, b.positions + 3L * b.n_atoms);
    E.batch = b;
    E.batch.src = E.src.data();
    E.batch.dst = E.dst.data();
    E.batch.element = E.element.data();
    E.batch.molecule = E.molecule.data();
    E.batch.ao_offset = E.ao_offset.data();
    E.batch.positions = E.positions.data();
    // edges of atom i, to find each edge's reverse
    std::vector<int32_t> first(b.n_atoms + 1, 0), order(b.n_edges);
    for (long e = 0; e < b.n_edges; ++e) ++first[E.src[e] + 1];
    for (long i = 0; i < b.n_atoms; ++i) first[i + 1] += first[i];
    std::vector<int32_t> fill(first.begin(), first.end() - 1);
    for (long e = 0; e < b.n_edges; ++e) order[fill[E.src[e]]++] = (int32_t)e;
    E.pair_edge.clear();
    E.edge_pair.assign(b.n_edges, -1);
    for (long e = 0; e < b.n_edges; ++e) {
        const int i = E.src[e], j = E.dst[e];
        if (i >= j) continue;
        int32_t reverse = -1;
        for (int k = first[j]; k < first[j + 1]; ++k)
            if (E.dst[order[k]] == i) reverse = order[k];
        if (reverse < 0) return false;
        E.edge_pair[e] = E.edge_pair[reverse] = (int32_t)(E.pair_edge.size() / 2);
        E.pair_edge.push_back((int32_t)e);
        E.pair_edge.push_back(reverse);
    }
    for (long e = 0; e < b.n_edges; ++e)
        if (E.edge_pair[e] < 0) return false;
    return true;
}

template <typename T>
int run_forward(void* engine, const void* batch, T* const* matrices) {
    try {
        Engine<T>& E = *static_cast<Engine<T>*>(engine);
        if (E.model->channels > MAX_CHANNELS) return 4;
        if (!set_batch(E, *static_cast<const Batch<T>*>(batch))) return 3;
        switch (E.model->channels) {  // the shipped models' channel counts get compiled-in loop bounds
            case 8: forward<T, 8>(E, matrices); break;
            case 16: forward<T, 16>(E, matrices); break;
            case 32: forward<T, 32>(E, matrices); break;
            case 64: forward<T, 64>(E, matrices); break;
            default: forward<T, 0>(E, matrices);
        }
        return 0;
    } catch (const std::bad_alloc&) {
        return 1;
    }
}

template <typename T>
int run_backward(void* engine, const T* const* matrices_bar, T* pos_bar) {
    Engine<T>& E = *static_cast<Engine<T>*>(engine);
    if (!E.has_forward) return 2;
    try {
        switch (E.model->channels) {
            case 8: backward<T, 8>(E, matrices_bar, pos_bar); break;
            case 16: backward<T, 16>(E, matrices_bar, pos_bar); break;
            case 32: backward<T, 32>(E, matrices_bar, pos_bar); break;
            case 64: backward<T, 64>(E, matrices_bar, pos_bar); break;
            default: backward<T, 0>(E, matrices_bar, pos_bar);
        }
        return 0;
    } catch (const std::bad_alloc&) {
        return 1;
    }
}

}  // namespace

// ----------------------------------------------------------------------------- C interface
// Return codes: 0 done, 1 out of memory, 2 backward before any forward, 3 an edge without its
// reverse, 4 more channels than MAX_CHANNELS.
extern "C" {

int phisnet_abi_version() { return 3; }

void* phisnet_engine_create_f64(const void* model) {
    auto* E = new (std::nothrow) Engine<double>();
    if (E) E->model = static_cast<const Model<double>*>(model);
    return E;
}
void* phisnet_engine_create_f32(const void* model) {
    auto* E = new (std::nothrow) Engine<float>();
    if (E) E->model = static_cast<const Model<float>*>(model);
    return E;
}
void phisnet_engine_destroy_f64(void* engine) { delete static_cast<Engine<double>*>(engine); }
void phisnet_engine_destroy_f32(void* engine) { delete static_cast<Engine<float>*>(engine); }

int phisnet_forward_f64(void* engine, const void* batch, double* const* matrices) { return run_forward<double>(engine, batch, matrices); }
int phisnet_forward_f32(void* engine, const void* batch, float* const* matrices) { return run_forward<float>(engine, batch, matrices); }
int phisnet_backward_f64(void* engine, const double* const* matrices_bar, double* pos_bar) { return run_backward<double>(engine, matrices_bar, pos_bar); }
int phisnet_backward_f32(void* engine, const float* const* matrices_bar, float* pos_bar) { return run_backward<float>(engine, matrices_bar, pos_bar); }

// The library is loaded with ctypes; this makes it an importable (empty) module as well, which
// is what setuptools builds and what tells Python where the file is.
static struct PyModuleDef phisnet_native_module = {PyModuleDef_HEAD_INIT, "_phisnet", "PhiSNet native engine (called through ctypes).", -1, nullptr, nullptr, nullptr, nullptr, nullptr};
PyMODINIT_FUNC PyInit__phisnet(void) { return PyModule_Create(&phisnet_native_module); }
}
