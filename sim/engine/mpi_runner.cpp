#include "sim/engine/mpi_runner.hpp"

#include "sim/io/config_reader.hpp"

#include <mpi.h>

#include <atomic>
#include <climits>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace trialsim::mpi {

namespace {

// Every exchange is point to point between rank 0 and one other rank, which sends a request and
// waits for the one reply (so a rank that has left a collective early can still be answered).
constexpr int kTagRequest = 101;
constexpr int kTagReply = 102;

enum class Request : std::uint64_t { ready = 1, result = 2, error = 3, want_data = 4, finished = 5 };
enum class Reply : std::uint64_t { work = 1, final = 2, data = 3, ack = 4 };

int g_rank = 0, g_size = 1;
// Ranks that ended their command while rank 0 was still in a collective (they failed on their
// own): rank 0 has their report and must not wait for it again.
std::vector<std::pair<int, int>> g_finished_early;  // rank, exit code

std::string early_failure_text(int rank, int code) {
  return "rank " + std::to_string(rank) + " stopped with exit code " + std::to_string(code) +
         " before this part of the run (an input only it could not read?); run the command without mpirun to see why";
}

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"}) {
    if (std::getenv(v) != nullptr) return true;
  }
  return false;
}

// A message: a kind, some 64-bit words, then bytes.
struct Message {
  std::uint64_t kind = 0;
  std::vector<std::uint64_t> words;
  std::string bytes;

  std::vector<char> pack() const {
    std::vector<char> out;
    out.reserve(16 + words.size() * 8 + bytes.size());
    auto put = [&out](const void* p, std::size_t n) {
      const char* c = static_cast<const char*>(p);
      out.insert(out.end(), c, c + n);
    };
    const std::uint64_t header[2] = {kind, words.size()};
    put(header, sizeof header);
    put(words.data(), words.size() * 8);
    put(bytes.data(), bytes.size());
    return out;
  }
  static Message unpack(const std::vector<char>& in) {
    Message m;
    std::uint64_t header[2] = {0, 0};
    if (in.size() < sizeof header) throw std::runtime_error("MPI: short message");
    std::memcpy(header, in.data(), sizeof header);
    m.kind = header[0];
    if (in.size() < sizeof header + header[1] * 8) throw std::runtime_error("MPI: short message");
    m.words.resize(header[1]);
    if (header[1] > 0) std::memcpy(m.words.data(), in.data() + sizeof header, header[1] * 8);
    m.bytes.assign(in.data() + sizeof header + header[1] * 8, in.size() - sizeof header - header[1] * 8);
    return m;
  }
};

void send(const Message& m, int to, int tag) {
  const std::vector<char> buf = m.pack();
  if (buf.size() > static_cast<std::size_t>(INT_MAX)) {
    throw std::runtime_error("MPI: a message of " + std::to_string(buf.size()) + " bytes is over MPI's 2 GiB limit "
                             "(fewer --reps, or fewer statistics)");
  }
  MPI_Send(buf.data(), static_cast<int>(buf.size()), MPI_BYTE, to, tag, MPI_COMM_WORLD);
}

Message receive(int from, int tag, int* source = nullptr) {
  MPI_Status st;
  MPI_Probe(from, tag, MPI_COMM_WORLD, &st);
  int count = 0;
  MPI_Get_count(&st, MPI_BYTE, &count);
  std::vector<char> buf(static_cast<std::size_t>(count));
  MPI_Recv(buf.data(), count, MPI_BYTE, st.MPI_SOURCE, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  if (source) *source = st.MPI_SOURCE;
  return Message::unpack(buf);
}

// A request, if one is waiting.
std::optional<Message> poll(int* source) {
  int flag = 0;
  MPI_Status st;
  MPI_Iprobe(MPI_ANY_SOURCE, kTagRequest, MPI_COMM_WORLD, &flag, &st);
  if (!flag) return std::nullopt;
  return receive(st.MPI_SOURCE, kTagRequest, source);
}

std::string doubles_bytes(const std::vector<double>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(double));
}
std::vector<double> bytes_doubles(const std::string& s) {
  std::vector<double> v(s.size() / sizeof(double));
  if (!v.empty()) std::memcpy(v.data(), s.data(), v.size() * sizeof(double));
  return v;
}

// The exit code and text for an exception (as the command line reports them).
std::pair<int, std::string> describe(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const PeerFailed& x) {
    return {x.exit_code, ""};
  } catch (const InputError& x) {
    return {2, x.what()};
  } catch (const OutputError& x) {
    return {3, std::string("trialsim: ") + x.what()};
  } catch (const Interrupted&) {
    return {130, ""};
  } catch (const std::exception& x) {
    return {1, x.what()};
  } catch (...) {
    return {1, "unknown error"};
  }
}

// Another rank's failure, on rank 0: reported with its line and code, but not as this rank's
// own InputError (which a command may handle, e.g. a sample-size search at too small a size).
[[noreturn]] void raise(int code, const std::string& text) {
  if (code == 130) throw Interrupted{};
  throw PeerFailed(code, code == 1 ? "trialsim: error: " + text : text);
}

// A final reply ends a collective: status 0 with the tree's state, or an exit code and text.
Message final_message(int code, const std::string& text, const std::vector<double>& state) {
  Message m;
  m.kind = static_cast<std::uint64_t>(Reply::final);
  m.words = {static_cast<std::uint64_t>(code)};
  m.bytes = code == 0 ? doubles_bytes(state) : text;
  return m;
}

// Whether a fast rank may take a whole super-chunk at `at`: only while plenty remain, so that
// the last work is handed out in small pieces and no rank waits long for another.
bool take_super_chunk(std::uint64_t at, std::uint64_t end, bool start_accepts_super, std::uint64_t start) {
  const std::uint64_t ranks = static_cast<std::uint64_t>(g_size);
  return at % kSuperChunkSize == 0 && end - at >= 2 * ranks * kSuperChunkSize && (at > start || start_accepts_super);
}

// Names one collective step: every rank must be at the same one (same scenario, seed and
// replicate range), else their nodes would not belong together.
std::uint64_t fingerprint(const Scenario& s, const EngineOptions& o, std::uint64_t start, std::uint64_t end) {
  std::string text = s.to_json().dump();
  text += "|" + std::to_string(o.seed) + "|" + std::to_string(start) + "|" + std::to_string(end);
  std::uint64_t h = 14695981039346656037ULL;  // FNV-1a, 64 bit
  for (const char c : text) {
    h ^= static_cast<std::uint8_t>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

struct Done {
  WorkUnit unit;
  std::vector<double> state;
  std::vector<ReplicateResult> trials;
};

// What a unit's trials are needed for on rank 0: its on_trial callback, below a replicate.
std::uint64_t ship_below(const EngineOptions& o) { return o.on_trial ? o.on_trial_below : 0; }

Done compute(const Scenario& s, const EngineOptions& o, const WorkUnit& u, std::uint64_t below) {
  Done d;
  d.unit = u;
  EngineOptions local = o;
  local.on_progress = nullptr;
  local.on_trial = nullptr;
  if (u.first < below) {
    local.on_trial = [&d](const ReplicateResult& r) { d.trials.push_back(r); };
    local.on_trial_below = below;
  }
  d.state = simulate_unit(s, local, u).state();
  return d;
}

void coordinate(const Scenario& s, const EngineOptions& o, ReductionTree& tree, std::uint64_t end) {
  const std::uint64_t start = tree.end();
  const bool start_accepts_super = tree.accepts(2);
  const std::uint64_t below = ship_below(o);
  const std::uint64_t step = fingerprint(s, o, start, end);
  std::mutex mu;
  std::uint64_t next = start;
  std::uint64_t folded = start;  // tree.end(), as the computing thread may read it
  bool stopping = false;
  int fail_code = 0;
  std::string fail_text;
  std::exception_ptr own_error;
  std::map<std::uint64_t, Done> done;
  std::atomic<bool> own_finished{false};

  // The next unit, none when all are handed out (or the run stops), or "not yet" when trials
  // are shipped and the fold lags: at most 4 chunks per rank may wait in memory, as trials
  // (2 880 bytes each) are large. Units that ship trials are always chunks.
  enum class Take { unit, not_yet, none };
  auto take = [&](WorkUnit& u) {
    std::lock_guard<std::mutex> lock(mu);
    if (stopping || next >= end) return Take::none;
    const bool trials = next < below;
    if (trials && next - folded >= 4 * static_cast<std::uint64_t>(g_size) * kChunkSize) return Take::not_yet;
    u.first = next;
    if (!trials && take_super_chunk(next, end, start_accepts_super, start)) {
      u.level = 2;
      u.end = next + kSuperChunkSize;
    } else {
      u.level = 1;
      u.end = std::min(end, next + kChunkSize);
    }
    next = u.end;
    return Take::unit;
  };
  auto fail = [&](int code, const std::string& text) {
    std::lock_guard<std::mutex> lock(mu);
    if (fail_code == 0 && !own_error) {
      fail_code = code;
      fail_text = text;
    }
    stopping = true;
  };

  // Rank 0 simulates too, in a thread of its own, while this thread serves the other ranks.
  std::thread own([&] {
    try {
      WorkUnit u;
      for (Take t; (t = take(u)) != Take::none;) {
        if (t == Take::not_yet) {
          std::this_thread::sleep_for(std::chrono::microseconds(200));
          continue;
        }
        Done d = compute(s, o, u, below);
        std::lock_guard<std::mutex> lock(mu);
        done.emplace(d.unit.first, std::move(d));
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      if (!own_error && fail_code == 0) own_error = std::current_exception();
      stopping = true;
    }
    own_finished.store(true);
  });

  auto fold = [&] {
    for (;;) {
      Done d;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (done.empty() || done.begin()->first != folded) return;
        d = std::move(done.begin()->second);
        done.erase(done.begin());
      }
      SummaryAccumulator node(s);
      node.set_state(d.state);
      tree.append(d.unit.level, node);
      if (o.on_trial) {
        for (const ReplicateResult& r : d.trials) o.on_trial(r);
      }
      {
        std::lock_guard<std::mutex> lock(mu);
        folded = tree.end();
      }
      if (o.on_progress) o.on_progress(tree.end(), end);
    }
  };

  // Ranks without work: those that may get some later (the fold lags) and those that will get
  // only the final reply.
  std::vector<int> idle;
  const std::size_t early = g_finished_early.size();
  auto all_idle = [&] {
    return static_cast<int>(idle.size() + (g_finished_early.size() - early)) >= g_size - 1 - static_cast<int>(early);
  };
  auto give = [&](int rank) {  // true when the rank got a unit
    WorkUnit u;
    if (take(u) != Take::unit) return false;
    Message w;
    w.kind = static_cast<std::uint64_t>(Reply::work);
    w.words = {u.first, u.end, static_cast<std::uint64_t>(u.level), below};
    send(w, rank, kTagReply);
    return true;
  };
  int code = 0;
  std::string text;
  try {
    for (;;) {
      int source = 0;
      const std::optional<Message> m = poll(&source);
      if (m) {
        const auto kind = static_cast<Request>(m->kind);
        bool answer = true;
        if (kind == Request::ready) {
          if (m->words.empty() || m->words[0] != step) {
            fail(1, "MPI: rank " + std::to_string(source) + " is at another step of the command than rank 0 (do all "
                    "ranks read the same files, e.g. the same sweep --out directory?)");
          }
        } else if (kind == Request::result) {
          Done d;
          d.unit = {m->words.at(0), m->words.at(1), static_cast<int>(m->words.at(2))};
          const std::size_t state_bytes = m->words.at(3) * sizeof(double);
          const std::size_t trials = m->words.at(4);
          d.state = bytes_doubles(m->bytes.substr(0, state_bytes));
          d.trials.resize(trials);
          if (trials > 0) std::memcpy(d.trials.data(), m->bytes.data() + state_bytes, trials * sizeof(ReplicateResult));
          std::lock_guard<std::mutex> lock(mu);
          if (!stopping) done.emplace(d.unit.first, std::move(d));
        } else if (kind == Request::error) {
          fail(static_cast<int>(m->words.at(0)), m->bytes);
        } else if (kind == Request::finished) {
          const int rank_code = static_cast<int>(m->words.at(0));
          g_finished_early.emplace_back(source, rank_code);
          fail(rank_code == 0 ? 1 : rank_code, early_failure_text(source, rank_code));
          answer = false;  // it waits for no reply here
        } else {
          fail(1, "MPI: rank " + std::to_string(source) + " sent an unexpected request");
        }
        if (answer && !give(source)) idle.push_back(source);
      }
      fold();
      // Work freed by the fold goes to ranks that were waiting for it.
      for (auto it = idle.begin(); it != idle.end();) it = give(*it) ? idle.erase(it) : it + 1;
      if (o.cancel && o.cancel->load()) {
        std::lock_guard<std::mutex> lock(mu);
        stopping = true;
      }
      bool over = false;
      {
        std::lock_guard<std::mutex> lock(mu);
        over = (stopping || next >= end) && all_idle() && own_finished.load();
      }
      if (over) break;
      if (!m) std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    own.join();
    fold();
    code = fail_code;
    text = fail_text;
    if (own_error) std::tie(code, text) = describe(own_error);
    if (code == 0 && o.cancel && o.cancel->load() && tree.end() < end) code = 130;
    if (code == 0 && tree.end() != end) {
      code = 1;
      text = "MPI: the run's replicates were not all folded (" + std::to_string(tree.end()) + " of " + std::to_string(end) + ")";
    }
  } catch (...) {
    // A failure here (e.g. writing the trials CSV): stop, then still answer every idle rank.
    {
      std::lock_guard<std::mutex> lock(mu);
      stopping = true;
    }
    if (own.joinable()) own.join();
    std::tie(code, text) = describe(std::current_exception());
    own_error = std::current_exception();
  }
  // Ranks still computing report once more; answer them too, then every idle rank.
  while (!all_idle()) {
    int source = 0;
    const Message m = receive(MPI_ANY_SOURCE, kTagRequest, &source);
    if (static_cast<Request>(m.kind) == Request::finished) {
      g_finished_early.emplace_back(source, static_cast<int>(m.words.at(0)));
    } else {
      idle.push_back(source);
    }
  }
  const Message fin = final_message(code, text, code == 0 ? tree.state() : std::vector<double>{});
  for (const int r : idle) send(fin, r, kTagReply);
  if (own_error) std::rethrow_exception(own_error);
  if (code != 0) raise(code, text);
}

void serve(const Scenario& s, const EngineOptions& o, ReductionTree& tree, std::uint64_t end) {
  Message ready;
  ready.kind = static_cast<std::uint64_t>(Request::ready);
  ready.words = {fingerprint(s, o, tree.end(), end)};
  send(ready, 0, kTagRequest);
  for (;;) {
    const Message reply = receive(0, kTagReply);
    if (static_cast<Reply>(reply.kind) == Reply::final) {
      const int code = static_cast<int>(reply.words.at(0));
      if (code != 0) throw PeerFailed(code);
      tree.set_state(bytes_doubles(reply.bytes));
      return;
    }
    if (static_cast<Reply>(reply.kind) != Reply::work) throw std::logic_error("MPI: unexpected reply from rank 0");
    const WorkUnit u{reply.words.at(0), reply.words.at(1), static_cast<int>(reply.words.at(2))};
    Message out;
    try {
      const Done d = compute(s, o, u, reply.words.at(3));
      out.kind = static_cast<std::uint64_t>(Request::result);
      out.words = {u.first, u.end, static_cast<std::uint64_t>(u.level), d.state.size(), d.trials.size()};
      out.bytes = doubles_bytes(d.state);
      out.bytes.append(reinterpret_cast<const char*>(d.trials.data()), d.trials.size() * sizeof(ReplicateResult));
    } catch (...) {
      const auto [code, text] = describe(std::current_exception());
      out = Message{};
      out.kind = static_cast<std::uint64_t>(Request::error);
      out.words = {static_cast<std::uint64_t>(code)};
      out.bytes = text;
    }
    send(out, 0, kTagRequest);
  }
}

}  // namespace

static_assert(std::is_trivially_copyable_v<ReplicateResult>, "trials are sent between ranks as bytes");

Session::Session(int& argc, char**& argv) {
  if (!launched_by_mpi()) return;
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  initialized_ = true;
  if (provided < MPI_THREAD_FUNNELED) {
    std::fprintf(stderr, "trialsim: this MPI library does not allow threads beside MPI (MPI_THREAD_FUNNELED)\n");
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  g_rank = rank_;
  g_size = size_;
}

Session::~Session() {
  if (initialized_) MPI_Finalize();
}

int Session::finish(int code) {
  if (size_ < 2) return code;
  if (rank_ != 0) {
    Message m;
    m.kind = static_cast<std::uint64_t>(Request::finished);
    m.words = {static_cast<std::uint64_t>(code)};
    send(m, 0, kTagRequest);
    const Message ack = receive(0, kTagReply);
    return static_cast<int>(ack.words.at(0));
  }
  // Rank 0 has finished the command. A rank still inside a collective (rank 0 failed before
  // reaching it, e.g. on an output path only rank 0 opens) is told the run failed with rank 0's
  // code; it ends its command and reports in like the others.
  const int failed = code == 0 ? 1 : code;
  int finished = 0;
  std::vector<int> done_ranks;
  for (const auto& [rank, rank_code] : g_finished_early) {
    (void)rank_code;
    ++finished;
    done_ranks.push_back(rank);
  }
  while (finished < size_ - 1) {
    int source = 0;
    const Message m = receive(MPI_ANY_SOURCE, kTagRequest, &source);
    if (static_cast<Request>(m.kind) == Request::finished) {
      ++finished;
      done_ranks.push_back(source);
    } else {
      send(final_message(failed, "", {}), source, kTagReply);
    }
  }
  Message ack;
  ack.kind = static_cast<std::uint64_t>(Reply::ack);
  ack.words = {static_cast<std::uint64_t>(code)};
  for (const int r : done_ranks) send(ack, r, kTagReply);
  return code;
}

void range_runner(const Scenario& scenario, const EngineOptions& options, ReductionTree& tree, std::uint64_t end) {
  if (g_size < 2) {
    simulate_range(scenario, options, tree, end);
    return;
  }
  if (g_rank == 0) {
    coordinate(scenario, options, tree, end);
  } else {
    serve(scenario, options, tree, end);
  }
}

void broadcaster(std::vector<double>& values) {
  if (g_size < 2) return;
  if (g_rank == 0) {
    Message data;
    data.kind = static_cast<std::uint64_t>(Reply::data);
    data.bytes = doubles_bytes(values);
    for (int served = 0; served < g_size - 1; ++served) {
      int source = 0;
      const Message m = receive(MPI_ANY_SOURCE, kTagRequest, &source);
      if (static_cast<Request>(m.kind) == Request::finished) {
        const int code = static_cast<int>(m.words.at(0));
        g_finished_early.emplace_back(source, code);
        throw std::runtime_error(early_failure_text(source, code));
      }
      if (static_cast<Request>(m.kind) != Request::want_data) {
        const std::string text = "MPI: rank " + std::to_string(source) + " is at another step of the command than rank 0";
        send(final_message(1, text, {}), source, kTagReply);  // it waits for a reply: end it
        throw std::runtime_error(text);
      }
      send(data, source, kTagReply);
    }
    return;
  }
  Message want;
  want.kind = static_cast<std::uint64_t>(Request::want_data);
  send(want, 0, kTagRequest);
  const Message reply = receive(0, kTagReply);
  if (static_cast<Reply>(reply.kind) == Reply::final) throw PeerFailed(static_cast<int>(reply.words.at(0)));
  values = bytes_doubles(reply.bytes);
}

}  // namespace trialsim::mpi
