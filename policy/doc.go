// Package policy decides when a transient node should migrate to another
// substrate. It turns one latency observation per evaluation cycle into the
// state machine's policy events, [fsm.CandidateBetter] and
// [fsm.CooldownElapsed], and replays latency traces so the thresholds can be
// tuned against recorded network behaviour.
//
// The package is pure: no network, no clock, no goroutines. Time is the
// number of evaluation cycles; a latency is just a value.
//
// # Rules
//
// An [Evaluator] is fed an [Snapshot] at the end of every evaluation cycle
// and returns at most one [Decision]. All thresholds are fields of [Config];
// the defaults are the seed's, applied to filtered latencies.
//
//   - Filter. Each cycle's samples first update a per-substrate filter
//     ([FilterRobust], the default: on log latencies, a running mean since
//     the last change a CUSUM detector found, becoming a 3GPP layer-3 filter
//     after 1/a samples, with an RFC 6298 style deviation, an honest
//     standard error and outlier handling); the rules compare filtered
//     latencies. [FilterNone] compares raw samples, as the
//     seed did; the naive baseline always does. docs/policy-filter.md
//     explains the filter, its defaults and its limits.
//   - Qualifying. A candidate in the node's enclave beats a current
//     attachment outside it, whatever the latencies. A move out of the node's
//     enclave never qualifies. Otherwise the candidate must be more than
//     Improvement faster: new < (1-Improvement) × current, so exactly 25%
//     faster does not qualify by default; with the filter, by more than
//     NoiseMargin standard errors of the two estimates and by more than
//     MinDifference too. The candidate must be measured this cycle; the
//     current's latency must be known when latencies are compared (with the
//     filter, its estimate bridges up to MaxMissedCycles missing samples). A
//     candidate with the current attachment's id is ignored: it is not a
//     migration.
//   - Streak. candidate_better names a candidate only once that same
//     candidate qualified in Streak consecutive counted cycles (default 2). A
//     cycle in which it does not qualify, including one without a
//     measurement, breaks its streak. When several reach their streak in the
//     same cycle, the best wins: the node's enclave first, then the lowest
//     latency, then the lowest id. A candidate keeps being named while it
//     keeps qualifying; the machine ignores the event while it migrates.
//   - Cooldown. [Evaluator.Attached] reports any change of attachment and
//     may come in the middle of a cycle. The next Evaluate ends that partial
//     cycle and counts nothing; then CooldownCycles full cycles (default 1)
//     count nothing, and the Evaluate that ends the last of them returns
//     cooldown_elapsed. Counting resumes at the following Evaluate, so with
//     the defaults the earliest next candidate_better is three Evaluates after
//     the partial one.
//   - Backoff. After [Evaluator.MigrationFailed], the candidate is not
//     considered for BackoffCycles cycles (default 2), doubled for each
//     consecutive failure up to BackoffMaxCycles (default 32). Attaching to it
//     resets its count.
//   - Ping-pong damping. Attaching back to the substrate left at most
//     PingPongWindow cycles ago (default 8) is a ping-pong: the streak
//     required between that pair of substrates doubles, up to
//     PingPongMaxStreak (default 8). Every PingPongRelaxCycles cycles without
//     another ping-pong on the pair (default 30) halve it again, down to
//     Streak. A network that keeps tricking the threshold is slowed down, not
//     obeyed. A departure by forced migration is not counted.
//   - Forced migrations (the current substrate said goodbye) are the
//     machine's: they bypass hysteresis and cooldown. [Evaluator.Forced]
//     tells the evaluator, which drops its streaks; Attached follows when the
//     new link is primary, and starts the cooldown as for any change.
//
// # Replay
//
// [ParseTrace] reads a latency trace (format in testdata/traces/README.md)
// and [Replay] runs a [Strategy] over it: [Hysteresis] (this policy, with the
// Config's filter) or [Naive] (migrate whenever a candidate is faster this
// cycle), reporting migrations, ping-pongs, reaction time to the trace's
// declared step changes and time spent on a non-best substrate.
// [Evaluator.Estimate] exposes the filtered latencies, for logs.
package policy
