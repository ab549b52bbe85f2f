package protocol

import (
	"encoding/json"
	"fmt"
	"strings"
)

// QueueOffset is one queue's offset in a reset.
type QueueOffset struct {
	MQ     MessageQueue
	Offset int64
}

// EncodeResetOffsetBody writes a ResetOffsetBody in the array form the Go
// client parses: {"offsetTable":[[{mq},offset],…]}. Its parser splits on
// "],[" and "},", so there are no spaces and no other nesting.
func EncodeResetOffsetBody(table []QueueOffset) []byte {
	var sb strings.Builder
	sb.WriteString(`{"offsetTable":[`)
	for i, e := range table {
		if i > 0 {
			sb.WriteByte(',')
		}
		mq, _ := json.Marshal(e.MQ)
		fmt.Fprintf(&sb, "[%s,%d]", mq, e.Offset)
	}
	sb.WriteString("]}")
	return []byte(sb.String())
}

// DecodeResetOffsetBody reads the body EncodeResetOffsetBody writes.
func DecodeResetOffsetBody(b []byte) (map[MessageQueue]int64, error) {
	var raw struct {
		OffsetTable [][2]json.RawMessage `json:"offsetTable"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("protocol: reset offset body: %w", err)
	}
	out := make(map[MessageQueue]int64, len(raw.OffsetTable))
	for _, kv := range raw.OffsetTable {
		var mq MessageQueue
		var off int64
		if err := json.Unmarshal(kv[0], &mq); err != nil {
			return nil, fmt.Errorf("protocol: reset offset body: %w", err)
		}
		if err := json.Unmarshal(kv[1], &off); err != nil {
			return nil, fmt.Errorf("protocol: reset offset body: %w", err)
		}
		out[mq] = off
	}
	return out, nil
}
