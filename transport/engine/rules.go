package engine

// Rule is one decision the engine takes outside the declared chart of
// package fsm: how it turns a link report, a deadline or a command into an
// event of the chart (or into no event), how it evaluates the chart's
// guards, and how it carries out what the chart leaves open (which
// substrate to dial, when to ping, when the overlap is over). Every rule is
// pinned by a test of this package, named in Test.
type Rule struct {
	Name string // short snake_case id
	When string // the input or condition
	Then string // what the engine does: the event it fires or the effect it emits
	Test string // the test function that pins it
}

// Rules returns the engine's table of rules, in the order a reader meets
// them: commands, time, link reports, gossip, the policy, the choice of
// substrates, deadlines and heartbeats, the overlap, closing links,
// detachment. The
// diagrams tool (tools/gendot) lists them beside the chart's transitions.
// The table is data: the behaviour is in the engine, and each rule's test
// checks that the two agree.
func Rules() []Rule {
	return []Rule{
		// Commands.
		{"attach_command",
			"the embedder's Attach",
			"refused with ErrNotDialable when the substrate has no URL or is this node, and with ErrNotDetached unless detached; " +
				"otherwise the substrate is learned and queued alone as a forced move (a refusal's alternatives are raced, " +
				"see candidate_goodbye) and attach is fired",
			"TestRuleAttachCommand"},
		{"close_command",
			"the embedder's Close",
			"close is fired (every link closed, see close_code, then the Closed effect); afterwards Attach and Observe return ErrClosed " +
				"and every other input is ignored",
			"TestRuleCloseCommand"},

		// Time.
		{"time_monotonic",
			"a Step whose now is earlier than the latest now seen (a shell's clocks disagree)",
			"the latest now is used: time never goes backwards for the engine, so no deadline is re-armed in the past " +
				"and no report is stamped before one it follows",
			"TestRuleTimeMonotonic"},

		// Link reports.
		{"stale_report",
			"a welcome, goodbye, gossip frame or rejected frame from a link that is neither the primary nor a racing candidate",
			"dropped and counted in Stats.StaleEventsDropped; no event is fired",
			"TestRuleStaleReport"},
		{"stale_close_or_ping",
			"LinkClosed or PingDone from a link the engine already dropped",
			"dropped without counting: the engine closed that link itself, so its close and its outstanding ping are expected",
			"TestRuleStaleCloseOrPing"},
		{"welcome",
			"a valid welcome on a racing candidate",
			"the candidate is marked welcomed, its id is learned when it was dialled by URL only, the substrates of the " +
				"welcome's topology are learned, and handshake_ok is fired about it",
			"TestRuleWelcome"},
		{"welcome_wrong_parent",
			"a welcome whose parent id is not the id of the substrate dialled",
			"a bad frame from the candidate: counted in FramesRejected, the substrate backed off, new_failed fired about it",
			"TestRuleWelcomeWrongParent"},
		{"duplicate_welcome",
			"a second welcome on a welcomed candidate or on the primary",
			"ignored: no event, nothing counted",
			"TestRuleDuplicateWelcome"},
		{"candidate_goodbye",
			"a racing candidate says goodbye (a refusal, e.g. \"at capacity\")",
			"its substrate is backed off; in a forced move (goodbye, suspicion, death, rejoin, first attach) its alternatives " +
				"join the queue, ranked; in a policy migration they do not, so the policy's choice is cancelled rather than second-guessed; " +
				"new_failed is fired about the candidate",
			"TestRuleCandidateGoodbye"},
		{"primary_goodbye",
			"the primary's first goodbye",
			"the link is marked leaving, its substrate backed off, the goodbye's first maxAlternatives (16; REPRAM names at most 5) " +
				"alternatives learned and queued with every other known substrate, ranked; goodbye is fired (the link is kept until it closes)",
			"TestRulePrimaryGoodbye"},
		{"repeated_goodbye",
			"a further goodbye from a primary that already said goodbye",
			"ignored before anything is learned: no event, no further backoff of its substrate, its alternatives not learned",
			"TestRuleRepeatedGoodbye"},
		{"primary_closed",
			"LinkClosed from the primary",
			"its substrate is backed off (unless it said goodbye, which already did), every known substrate is queued, ranked, " +
				"and old_died is fired",
			"TestRuleLinkClosed"},
		{"candidate_closed",
			"LinkClosed from a racing candidate (a failed dial included)",
			"its substrate is backed off and new_failed is fired about it",
			"TestRuleLinkClosed"},
		{"bad_frame_candidate",
			"FrameRejected from a racing candidate",
			"counted in FramesRejected, the substrate backed off, new_failed fired about it",
			"TestRuleBadFrame"},
		{"bad_frame_primary",
			"FrameRejected from the primary",
			"counted in FramesRejected; the frame alone is dropped and the link kept",
			"TestRuleBadFrame"},
		{"gossip_before_welcome",
			"gossip from a candidate that has not welcomed",
			"a bad frame from the candidate: counted, backed off, new_failed fired about it; nothing is delivered",
			"TestRuleGossipBeforeWelcome"},

		// Gossip.
		{"message_too_old",
			"gossip whose timestamp is older than MaxMessageAge (negative turns the check off)",
			"the message alone is dropped and counted in TooOld; the link is kept (a substrate may forward an old message in good faith)",
			"TestRuleMessageTooOld"},
		{"late_gossip_after_switch",
			"gossip from the old primary after close_old gave it up (the switch), before its LinkClosed: what its " +
				"substrate sent before our close, already on its way (a substrate's writer may lag the new link's)",
			"delivered through dedup (see dedup; via the old substrate) and nothing else: no heartbeat, no overlap sample, " +
				"no event; once its LinkClosed came it is a stale report, as is gossip from a dropped candidate " +
				"(only the latest switched-away primary is kept)",
			"TestRuleLateGossipAfterSwitch"},
		{"dedup",
			"gossip whose key was delivered within the dedup window, on any link: a broadcast's key is its message id; " +
				"an ACK's is its message id (the acknowledged write's) and its from, apart from every broadcast id",
			"dropped and counted in DuplicatesDropped; otherwise delivered (Deliver, via the substrate of the link it came on): " +
				"the ACKs of one write from several substrates are each delivered once, so an embedder can count a quorum",
			"TestRuleDedup"},

		// The policy.
		{"policy_decision",
			"Observe: the end of an evaluation cycle",
			"the observed candidates are learned with their latency, the policy evaluates (the primary's latency defaults to its " +
				"pings' SRTT), candidate_better or cooldown_elapsed is fired as decided, then the Decided effect is emitted",
			"TestRulePolicyDecision"},
		{"policy_unobserved_candidate",
			"the policy decides candidate_better naming a substrate not among this cycle's dialable candidates " +
				"(a candidate without id or URL, or this node, is never offered to it)",
			"ignored: no event, a warning logged (a Policy other than package policy's may name anything)",
			"TestRulePolicyOwnSubstrate"},
		{"policy_own_substrate",
			"the policy decides candidate_better naming the primary's own substrate",
			"ignored: no event (a second hello from this node would replace its registration there)",
			"TestRulePolicyOwnSubstrate"},

		// Choosing substrates.
		{"learn_substrates",
			"a substrate named by Attach, Observe, a welcome's topology or a goodbye's alternatives",
			"remembered once, matched by id, else by URL (an entry known by URL only gains the id); never this node, never one without a URL; " +
				"at most maxKnown (256) are kept: beyond, the one learned least recently that no link is to is forgotten",
			"TestRuleLearnSubstrates"},
		{"restarted_substrate",
			"a substrate is named with an id at a URL known under another id (REPRAM restarted there: its default id is node-${Date.now()})",
			"the newer report wins: the entry takes the new id and enclave and loses its backoff, so the next dial expects the live " +
				"process's welcome; a failure later reported under the old id does not touch it; but while the primary or a welcomed " +
				"candidate is a link to the old id, its welcome outranks the report, which is not learned",
			"TestRuleRestartedSubstrate"},
		{"alternatives_order",
			"a move is prepared (goodbye, suspicion, death, rejoin) or a refusal's alternatives are queued",
			"the queue never holds this node, the primary's substrate or a racing one; it is ordered not-backed-off first, then " +
				"same enclave first, then best measured round trip (25 % buckets, unmeasured last), ties at random (seeded); " +
				"dial_alternative takes the first queued substrate still dialable",
			"TestRuleAlternativesOrder"},
		{"failure_backoff",
			"a substrate says goodbye, refuses, times out, dies, misses its heartbeats or sends a bad frame",
			"it is backed off for FailureBackoff doubled per consecutive failure, capped at FailureBackoffMax, plus up to 50 % " +
				"jitter; meanwhile it is ranked after every other substrate; its failures are cleared when it is promoted",
			"TestRuleFailureBackoff"},
		{"guard_has_alternative",
			"the chart asks has_alternative",
			"it holds when a queued substrate is dialable and fewer than RaceWidth candidates race, not counting the one the event is about",
			"TestRuleGuards"},
		{"guard_others_racing",
			"the chart asks others_racing",
			"it holds when a candidate other than the one the event is about is still racing",
			"TestRuleGuards"},

		// Deadlines.
		{"handshake_deadline",
			"a candidate has not welcomed HandshakeTimeout after its hello",
			"its substrate is backed off and handshake_timeout is fired about it",
			"TestRuleHandshakeDeadline"},
		{"attempt_delay",
			"AttemptDelay has passed since the last alternative was dialled (or, when a move starts while the policy's " +
				"candidate handshakes, since its hello) and no candidate welcomed",
			"attempt_delay is fired once (the chart widens the race when has_alternative holds)",
			"TestRuleAttemptDelay"},

		// Heartbeats.
		{"ping_schedule",
			"the primary or a welcomed candidate has no ping outstanding",
			"it is pinged at once when it becomes one, then HeartbeatInterval after the last ping, or sooner when it has been " +
				"silent (no frame, no pong) for its suspicion timeout: SRTT + 4·RTTVAR of its pings clamped to " +
				"[SuspectMin, SuspectMax], SuspectMax before the first sample; the ping's timeout is the suspicion timeout",
			"TestRulePingSchedule"},
		{"pong",
			"PingDone without error",
			"the missed count resets, the round trip is folded into SRTT/RTTVAR (RFC 6298) and recorded for ranking, and the " +
				"overlap's new link counts as alive",
			"TestRulePong"},
		{"suspect_primary",
			"the primary's first failed ping in a row",
			"every known substrate is queued, ranked, and old_suspected is fired (the link is kept)",
			"TestRuleSuspectPrimary"},
		{"missed_heartbeats",
			"MissedHeartbeats failed pings in a row on a link",
			"the primary: backed off, every known substrate queued, old_died fired; a candidate: backed off, new_failed fired about it",
			"TestRuleMissedHeartbeats"},
		{"starved_ping",
			"PingDone with Starved (the shell's reader was parked on back-pressure and could not read the pong)",
			"proves nothing: not a miss, not counted in PingsFailed; the link is pinged again on schedule",
			"TestRuleStarvedPing"},

		// The overlap.
		{"overlap_catch_up",
			"the overlap is checked (at welcome, at each pong of the new link, at each skew sample, and when it can next be over)",
			"overlap_done is fired when the new link answered a ping, the exempt boundary has passed (the later of the welcome " +
				"and the old arrival of the first id seen on both links, plus the margin; two more margins when the old link " +
				"delivered anything since the welcome), and no old-link " +
				"message past the boundary has been missing from the new link for a margin or more (younger ones may still be " +
				"on their way, so a steady stream delivered a little late holds nothing); once a message came on both links, " +
				"only origins the new link delivered count (REPRAM never forwards a substrate's own writes to its own " +
				"children, and a partial mesh may never bring some publishers to the new substrate); a message routed to this " +
				"node (an ACK, or one with a \"to\") comes only on the link its route takes and is not tracked",
			"TestRuleOverlapCatchUp"},
		{"overlap_margin",
			"ids seen on both links during an overlap",
			"their arrival differences are folded into a skew estimate (smoothed mean and deviation, kept across overlaps); " +
				"the margin is 2·(mean + 4·deviation) + OverlapFloor within [OverlapFloor, OverlapGrace], and OverlapGrace until an id " +
				"of the overlap has come on both links",
			"TestRuleOverlapMargin"},
		{"overlap_max",
			"OverlapMax has passed since the welcome and the new link has not caught up",
			"overlap_expired is fired about the new link",
			"TestRuleOverlapMax"},

		// Closing links.
		{"close_code",
			"the engine gives up a link it holds: close_old at the switch, close_rivals at a welcome, close_all at Close",
			"closed normally (the WebSocket close handshake), unless the link never welcomed or its last ping went unanswered: " +
				"then aborted, since a silent peer would hold the handshake for the library's whole timeout " +
				"(drop_candidate and drop_old always abort)",
			"TestRuleCloseCode"},

		// Detachment.
		{"rejoin_backoff",
			"the machine lands detached while substrates are known",
			"a rejoin is armed after the backoff (RejoinBackoff, doubled per detach up to RejoinBackoffMax, reset when a " +
				"candidate is promoted); at it every known substrate is queued, ranked (a backed-off one is still dialled when " +
				"it is the only one), and attach is fired",
			"TestRuleRejoinBackoff"},
	}
}
