package inventory

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"qianlang.io/services/events"
)

// Limits of what the admin may set.
const (
	MaxNameLen = 255
	MaxCents   = 1_000_000_000_000 // ten billion yuan
	MaxStock   = 1_000_000_000
	MaxLines   = 50
	MaxQty     = 99
)

var skuIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidSKUID reports whether id may name a SKU: 1 to 64 letters, digits,
// '-' or '_'.
func ValidSKUID(id string) bool { return skuIDPattern.MatchString(id) }

// SKUInput is what the admin sends for a SKU; missing fields are nil.
type SKUInput struct {
	Name       *string `json:"name"`
	PriceCents *int64  `json:"price_cents"`
	CostCents  *int64  `json:"cost_cents"`
	Stock      *int64  `json:"stock"`
}

// SKUChange is a validated SKUInput: set name, price and cost, add Stock.
type SKUChange struct {
	Name       string
	PriceCents int64
	CostCents  int64
	Stock      int64
}

// Validate checks in and returns the change it asks for; stock defaults to 0.
func (in SKUInput) Validate() (SKUChange, error) {
	var c SKUChange
	switch {
	case in.Name == nil || strings.TrimSpace(*in.Name) == "":
		return c, fmt.Errorf("name is required")
	case len(*in.Name) > MaxNameLen:
		return c, fmt.Errorf("name is longer than %d bytes", MaxNameLen)
	case in.PriceCents == nil:
		return c, fmt.Errorf("price_cents is required")
	case *in.PriceCents < 0 || *in.PriceCents > MaxCents:
		return c, fmt.Errorf("price_cents must be between 0 and %d", int64(MaxCents))
	case in.CostCents == nil:
		return c, fmt.Errorf("cost_cents is required")
	case *in.CostCents < 0 || *in.CostCents > MaxCents:
		return c, fmt.Errorf("cost_cents must be between 0 and %d", int64(MaxCents))
	case in.Stock != nil && (*in.Stock < 0 || *in.Stock > MaxStock):
		return c, fmt.Errorf("stock must be between 0 and %d", MaxStock)
	}
	c = SKUChange{Name: *in.Name, PriceCents: *in.PriceCents, CostCents: *in.CostCents}
	if in.Stock != nil {
		c.Stock = *in.Stock
	}
	return c, nil
}

// SKUQty is a quantity of one SKU.
type SKUQty struct {
	SKUID string
	Qty   int64
}

// LockPlan is a lock request made ready for the database: the request's
// lines in their order, and the quantity per SKU sorted by SKU id (the
// order in which rows are locked, so two locks never deadlock).
type LockPlan struct {
	Lines  []events.Line
	PerSKU []SKUQty
}

// PlanLock checks a lock request's lines. A request that cannot be
// valid (no lines, too many, a malformed SKU id, a quantity out of range)
// is refused with a reply, UNKNOWN_SKU, which the order service turns into
// 400; the same request always gets the same refusal.
func PlanLock(items []events.Line) (LockPlan, *events.StockLockReply) {
	if len(items) == 0 || len(items) > MaxLines {
		return LockPlan{}, &events.StockLockReply{Result: events.StockUnknownSKU}
	}
	per := map[string]int64{}
	lines := make([]events.Line, 0, len(items))
	for _, it := range items {
		if !ValidSKUID(it.SKUID) || it.Qty <= 0 || it.Qty > MaxQty {
			return LockPlan{}, &events.StockLockReply{Result: events.StockUnknownSKU, SKUID: it.SKUID}
		}
		per[it.SKUID] += int64(it.Qty)
		lines = append(lines, events.Line{SKUID: it.SKUID, Qty: it.Qty})
	}
	return LockPlan{Lines: lines, PerSKU: sortedQty(per)}, nil
}

func sortedQty(per map[string]int64) []SKUQty {
	out := make([]SKUQty, 0, len(per))
	for id, q := range per {
		out = append(out, SKUQty{SKUID: id, Qty: q})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SKUID < out[j].SKUID })
	return out
}

// PerSKU sums lines per SKU, sorted by SKU id.
func PerSKU(lines []events.Line) []SKUQty {
	per := map[string]int64{}
	for _, l := range lines {
		per[l.SKUID] += int64(l.Qty)
	}
	return sortedQty(per)
}

// State is an order's stock state in inventory.
type State string

// Stock states of an order. A lock that failed is FAILED and holds
// nothing; an order whose release came before its lock is a RELEASED (or
// RESTORED) tombstone that holds nothing either.
const (
	StateLocked   State = "LOCKED"
	StateSold     State = "SOLD"
	StateReleased State = "RELEASED"
	StateRestored State = "RESTORED"
	StateFailed   State = "FAILED"
)

// Event is what the order service reports about an order.
type Event string

// Events inventory consumes.
const (
	EventPaid     Event = "PAID"     // TopicOrderPaySuccess
	EventClosed   Event = "CLOSED"   // TopicOrderClosed
	EventRefunded Event = "REFUNDED" // TopicOrderRefunded
)

// Move is what a transition does to the order's units of each SKU.
type Move int

// Moves between a SKU's counters.
const (
	MoveNone    Move = iota
	MoveSell         // locked → sold
	MoveRelease      // locked → available
	MoveRestore      // sold → available
)

// Transition returns the state an order's stock goes to on ev and what
// happens to its units. ok is false when ev changes nothing (a redelivery,
// or an event that no longer applies), so applying an event twice is the
// same as once.
func Transition(from State, ev Event) (to State, move Move, ok bool) {
	switch {
	case from == StateLocked && ev == EventPaid:
		return StateSold, MoveSell, true
	case from == StateLocked && ev == EventClosed:
		return StateReleased, MoveRelease, true
	case from == StateLocked && ev == EventRefunded:
		// Refunded before its payment was seen: give the units back now
		// and remember, so the late payment does nothing.
		return StateRestored, MoveRelease, true
	case from == StateSold && ev == EventRefunded:
		return StateRestored, MoveRestore, true
	}
	return from, MoveNone, false
}

// Tombstone returns the state recorded when ev arrives for an order
// inventory never locked: a release that came first, so that the late lock
// request locks nothing. A payment for an order never locked has no
// tombstone (ok is false): it cannot be applied.
func Tombstone(ev Event) (State, bool) {
	switch ev {
	case EventClosed:
		return StateReleased, true
	case EventRefunded:
		return StateRestored, true
	}
	return "", false
}
