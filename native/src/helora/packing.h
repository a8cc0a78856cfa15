// Packings of the HE-LoRA product y = A x (A: [rank, in] LoRA-A, x: the layer input, in values)
// into CKKS plaintexts, independent of any backend: where x and the rows of A go, how many
// ciphertext x plaintext products a token needs, and where each y_i is read after decryption.
//
//  replicated-slots (the original's zero-rotation scheme): x is replicated R = min(slots / c, r)
//    times in the slots (segment k = slots [k c, k c + c)); plaintext p holds rows pR..pR+R-1 of
//    A, row pR+k in segment k. After ct x pt and decryption, y_{pR+k} = sum of segment k of the
//    decoded slots (the "segment sums", done outside the ciphertext).
//  rotations (the classic baseline): the same layout with segments padded to D = 2^ceil(log2 c),
//    R = min(slots / D, r); after ct x pt the ciphertext is rotate-and-summed (left by 1, 2, ...,
//    D/2) so slot kD holds y_{pR+k}; only those slots are read after decryption.
//  coefficients: x sits once in the coefficients (x_j at X^j); row pR+k of A is placed reversed,
//    coefficient k c + (c-1) - j holding A[pR+k][j], R = min(N / c, r) rows per plaintext. In
//    R[X]/(X^N+1) the product's coefficient o_k = k c + c - 1 is exactly sum_j A[pR+k][j] x_j:
//    other rows' terms land at distance >= 1 from every o_k, and since R c <= N the negacyclic
//    wrap only reaches coefficients below c - 1 = o_0. No FFT: y is read straight from
//    coefficients, and one encryption holds x without replication.
//
// An input longer than the capacity (slots, D-padded slots, or N) is cut into chunks of c values,
// each its own ciphertext; the chunks' partial products are added after decryption.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace tensafe::helora {

enum class Packing { ReplicatedSlots = 0, Rotations = 1, Coefficients = 2 };
Packing parse_packing(const std::string& s);  // ArgumentRangeError naming `packing`
const char* packing_name(Packing p);

struct PackingLayout {
  Packing packing = Packing::ReplicatedSlots;
  int n = 0;            // ring dimension
  int slots = 0;        // n / 2
  int in_dim = 0;
  int rank = 0;
  int chunk = 0;        // c: input values per ciphertext
  int chunks = 0;       // ceil(in_dim / c)
  int segment = 0;      // stride between rows (c, or D for rotations)
  int rows_per_pt = 0;  // R
  int products_per_chunk = 0;  // ceil(rank / R)
  int rotation_steps = 0;      // log2(D) for rotations, else 0

  int products() const { return chunks * products_per_chunk; }
  // Values per packed vector: slots for the slot packings, n for coefficients.
  int width() const { return packing == Packing::Coefficients ? n : slots; }
  // Rotation steps (left) the rotations packing needs keys for: 1, 2, ..., D/2.
  std::vector<int64_t> rotations() const;
};

PackingLayout make_layout(Packing packing, int n, int in_dim, int rank);

// The values (width() of them) encoding chunk `chunk` of the input x (in_dim values).
void pack_input(const PackingLayout& L, const double* x, int chunk, double* out);
// The values encoding the A rows of product `product` of chunk `chunk` (A row-major [rank, in_dim]).
void pack_weights(const PackingLayout& L, const float* a, int chunk, int product, double* out);
// Adds to y (rank values) what the decoded values of product `product` of any chunk hold.
// For the rotations packing, `decoded` is the slots after the rotate-and-sum.
void extract(const PackingLayout& L, const double* decoded, int product, double* y);
// Indices of `decoded` that extract() reads for the rotations/coefficients packings (the
// replicated-slots packing reads whole segments): rows of product `product`.
int read_index(const PackingLayout& L, int row_in_product);

// Float64 simulation of the whole packed computation (slot-wise products, rotate-and-sum with
// wrap-around, negacyclic polynomial products), the reference the HE versions are held to.
void simulate(const PackingLayout& L, const float* a, const double* x, double* y);

}  // namespace tensafe::helora
