package protocol

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestResetOffsetBodyRoundTrip(t *testing.T) {
	table := []QueueOffset{
		{MQ: MessageQueue{Topic: "T", BrokerName: "broker-a", QueueID: 0}, Offset: 5},
		{MQ: MessageQueue{Topic: "T", BrokerName: "broker-a", QueueID: 1}, Offset: 0},
	}
	b := EncodeResetOffsetBody(table)
	// The Go client splits this text on "],[" and "},": the exact shape
	// matters, not only its JSON meaning.
	require.Equal(t, `{"offsetTable":[[{"topic":"T","brokerName":"broker-a","queueId":0},5],[{"topic":"T","brokerName":"broker-a","queueId":1},0]]}`, string(b))
	got, err := DecodeResetOffsetBody(b)
	require.NoError(t, err)
	require.Equal(t, map[MessageQueue]int64{table[0].MQ: 5, table[1].MQ: 0}, got)
	_, err = DecodeResetOffsetBody([]byte(`{"offsetTable":[[1]]}`))
	require.Error(t, err)
}
