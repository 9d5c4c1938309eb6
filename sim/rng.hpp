#pragma once
// Random streams for one replicate.
//
// A stream is Random123's Philox4x64-10 (Salmon et al., "Parallel random numbers: as easy as
// 1, 2, 3", SC 2011) keyed by (seed, replicate) with the counter's upper words holding the
// model kind and a sub-stream index (a patient id, or 0). The stream of a replicate therefore
// depends only on (seed, replicate, kind, index), never on the thread that runs it, and any
// replicate can be replayed alone. Keying costs nothing, so every patient gets its own
// sub-stream: patient i of a trial is the same person whatever the number consented, which
// gives common random numbers across designs for free.
//
// Seed and replicate occupy separate key words, so (seed, r) pairs never collide the way
// `seed + r` would.
#include "sim/draw_counter.hpp"

#include <Random123/philox.h>

#include <cstdint>
#include <limits>

namespace trialsim {

enum class StreamKind : std::uint64_t {
  population = 1,
  randomization = 3,
  treatment = 4,
  dropout = 5,
  measurement = 6,
  analysis = 7,
  covariates = 8,  // the covariates only the patients CSV shows (Population::draw)
};

// A UniformRandomBitGenerator over Philox4x64: usable as the engine of any Boost.Random or
// <random> distribution.
class Stream {
 public:
  using result_type = std::uint64_t;

  Stream(std::uint64_t seed, std::uint64_t replicate, StreamKind kind, std::uint64_t index = 0)
      : key_{{seed, replicate}}, ctr_{{0, 0, index, static_cast<std::uint64_t>(kind)}} { draw_counter::on_stream(); }

  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return std::numeric_limits<result_type>::max(); }

  result_type operator()() {
    draw_counter::on_output();
    if (used_ == 4) {
      block_ = gen_(ctr_, key_);
      ++ctr_.v[0];  // 2^64 blocks per sub-stream: never exhausted in practice
      used_ = 0;
    }
    return block_.v[used_++];
  }

 private:
  r123::Philox4x64 gen_{};
  r123::Philox4x64::key_type key_;
  r123::Philox4x64::ctr_type ctr_;
  r123::Philox4x64::ctr_type block_{};
  unsigned used_ = 4;
};

}  // namespace trialsim
