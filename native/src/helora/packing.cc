#include "helora/packing.h"

#include <algorithm>

#include "common/errors.h"

namespace tensafe::helora {

Packing parse_packing(const std::string& s) {
  if (s == "replicated-slots") return Packing::ReplicatedSlots;
  if (s == "rotations") return Packing::Rotations;
  if (s == "coefficients") return Packing::Coefficients;
  throw ArgumentRangeError("packing must be 'replicated-slots', 'rotations' or 'coefficients', got '" + s + "'");
}

const char* packing_name(Packing p) {
  switch (p) {
    case Packing::ReplicatedSlots: return "replicated-slots";
    case Packing::Rotations: return "rotations";
    default: return "coefficients";
  }
}

static int next_pow2(int x) {
  int p = 1;
  while (p < x) p <<= 1;
  return p;
}

PackingLayout make_layout(Packing packing, int n, int in_dim, int rank) {
  if (n < 8 || (n & (n - 1)) != 0) throw ArgumentRangeError("polyN must be a power of two >= 8, got " + std::to_string(n));
  if (in_dim < 1) throw ArgumentRangeError("in_dim must be >= 1, got " + std::to_string(in_dim));
  if (rank < 1) throw ArgumentRangeError("rank must be >= 1, got " + std::to_string(rank));
  PackingLayout L;
  L.packing = packing;
  L.n = n;
  L.slots = n / 2;
  L.in_dim = in_dim;
  L.rank = rank;
  const int capacity = packing == Packing::Coefficients ? n : L.slots;
  // Balanced chunks: the fewest ciphertexts, then equal sizes (a long input is split evenly).
  L.chunks = (in_dim + capacity - 1) / capacity;
  L.chunk = (in_dim + L.chunks - 1) / L.chunks;
  if (packing == Packing::Rotations) {
    L.segment = next_pow2(L.chunk);  // <= slots, since chunk <= slots and slots is a power of two
    int steps = 0;
    for (int s = 1; s < L.segment; s <<= 1) ++steps;
    L.rotation_steps = steps;
  } else {
    L.segment = L.chunk;
  }
  L.rows_per_pt = std::min(capacity / L.segment, rank);
  L.products_per_chunk = (rank + L.rows_per_pt - 1) / L.rows_per_pt;
  return L;
}

std::vector<int64_t> PackingLayout::rotations() const {
  std::vector<int64_t> r;
  if (packing != Packing::Rotations) return r;
  for (int s = 1; s < segment; s <<= 1) r.push_back(s);
  return r;
}

static int chunk_len(const PackingLayout& L, int chunk) {
  return std::max(0, std::min(L.chunk, L.in_dim - chunk * L.chunk));
}

void pack_input(const PackingLayout& L, const double* x, int chunk, double* out) {
  std::fill(out, out + L.width(), 0.0);
  const int len = chunk_len(L, chunk);
  const double* xc = x + static_cast<size_t>(chunk) * L.chunk;
  if (L.packing == Packing::Coefficients) {
    std::copy(xc, xc + len, out);
    return;
  }
  for (int k = 0; k < L.rows_per_pt; ++k) std::copy(xc, xc + len, out + static_cast<size_t>(k) * L.segment);
}

void pack_weights(const PackingLayout& L, const float* a, int chunk, int product, double* out) {
  std::fill(out, out + L.width(), 0.0);
  const int len = chunk_len(L, chunk);
  for (int k = 0; k < L.rows_per_pt; ++k) {
    const int row = product * L.rows_per_pt + k;
    if (row >= L.rank) break;
    const float* ar = a + static_cast<size_t>(row) * L.in_dim + static_cast<size_t>(chunk) * L.chunk;
    double* seg = out + static_cast<size_t>(k) * L.segment;
    if (L.packing == Packing::Coefficients) {
      for (int j = 0; j < len; ++j) seg[L.chunk - 1 - j] = ar[j];
    } else {
      for (int j = 0; j < len; ++j) seg[j] = ar[j];
    }
  }
}

int read_index(const PackingLayout& L, int k) {
  return L.packing == Packing::Coefficients ? k * L.segment + L.chunk - 1 : k * L.segment;
}

void extract(const PackingLayout& L, const double* decoded, int product, double* y) {
  for (int k = 0; k < L.rows_per_pt; ++k) {
    const int row = product * L.rows_per_pt + k;
    if (row >= L.rank) break;
    if (L.packing == Packing::ReplicatedSlots) {
      const double* seg = decoded + static_cast<size_t>(k) * L.segment;
      double s = 0;
      for (int j = 0; j < L.chunk; ++j) s += seg[j];
      y[row] += s;
    } else {
      y[row] += decoded[read_index(L, k)];
    }
  }
}

void simulate(const PackingLayout& L, const float* a, const double* x, double* y) {
  std::fill(y, y + L.rank, 0.0);
  const int w = L.width();
  std::vector<double> xin(w), pw(w), prod(w), tmp(w);
  for (int c = 0; c < L.chunks; ++c) {
    pack_input(L, x, c, xin.data());
    for (int p = 0; p < L.products_per_chunk; ++p) {
      pack_weights(L, a, c, p, pw.data());
      if (L.packing == Packing::Coefficients) {
        // negacyclic product: X^N = -1
        std::fill(prod.begin(), prod.end(), 0.0);
        for (int i = 0; i < w; ++i) {
          if (xin[i] == 0) continue;
          for (int j = 0; j < w; ++j) {
            if (pw[j] == 0) continue;
            const int e = i + j;
            if (e < w) prod[e] += xin[i] * pw[j];
            else prod[e - w] -= xin[i] * pw[j];
          }
        }
      } else {
        for (int i = 0; i < w; ++i) prod[i] = xin[i] * pw[i];
        if (L.packing == Packing::Rotations) {
          for (int s = 1; s < L.segment; s <<= 1) {  // left rotation by s, cyclic over the slots
            for (int i = 0; i < w; ++i) tmp[i] = prod[(i + s) % w];
            for (int i = 0; i < w; ++i) prod[i] += tmp[i];
          }
        }
      }
      extract(L, prod.data(), p, y);
    }
  }
}

}  // namespace tensafe::helora
