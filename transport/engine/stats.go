package engine

// Stats counts what the engine did. All counters only grow.
type Stats struct {
	Joins              int // joining → attached: the first welcome of a race from nothing
	Migrations         int // completed make-before-break switches (overlap_done)
	Cancelled          int // migrations cancelled, old link kept
	Accelerated        int // old link died mid-overlap, new link promoted
	Forced             int // migrations started by the primary's goodbye
	Suspected          int // migrations started because the primary went silent
	Reattached         int // the primary died and the alternatives were raced at once
	ContinuedAlone     int // old link died before a candidate's welcome
	Detaches           int // left without any link
	Rejoins            int // attach attempts made by the rejoin backoff
	Dials              int // links dialled
	RaceDials          int // of which dialled by the race (attempt delay or a failed rival)
	Delivered          int // gossip handed to the embedder
	DuplicatesDropped  int // gossip dropped because its id (an ACK's id and sender) was already delivered
	StaleEventsDropped int // reports from links no longer primary or candidate
	FramesRejected     int // frames that failed to decode, verify or fit the protocol
	TooOld             int // gossip dropped because its timestamp was older than MaxMessageAge
	PingsFailed        int // pings unanswered (not counting those a parked reader could not read)
}
