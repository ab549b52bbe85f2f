package remoting

import (
	"bytes"
	"testing"
)

var sendHeader = []byte(`{"code":10,"language":"GO","version":317,"opaque":12,"flag":0,"remark":"","extFields":{"producerGroup":"pg","topic":"TopicOrderPaySuccess","defaultTopic":"TBW102","defaultTopicQueueNums":"4","queueId":"3","sysFlag":"0","bornTimestamp":"1700000000000","flag":"0","properties":"UNIQ_KEY\u0001C0A80102AABB0000000070558D7D0001\u0002TAGS\u0001TagA\u0002KEYS\u0001order-000123\u0002","reconsumeTimes":"0","unitMode":"false","maxReconsumeTimes":"0","batch":"false"}}`)

func BenchmarkDecodeSendHeader(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(sendHeader)))
	for b.Loop() {
		var c Command
		if err := decodeJSONHeader(sendHeader, &c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeSendResponse(b *testing.B) {
	c := &Command{Code: 0, Language: "GO", Version: Version, Opaque: 123456, Flag: FlagResponse, ExtFields: Fields{
		{"msgId", "7F00000100002A9F000000000001E240"}, {"queueId", "3"}, {"queueOffset", "123456"},
		{"transactionId", "C0A80102AABB0000000070558D7D0001"}, {"MSG_REGION", "DefaultRegion"}, {"TRACE_ON", "true"},
	}}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendFrame(buf[:0], c)
	}
}

func BenchmarkReadFrame1KiB(b *testing.B) {
	frame := AppendFrame(nil, &Command{Code: 10, ExtFields: Fields{{"topic", "T"}}, Body: bytes.Repeat([]byte("x"), 1024)})
	r := bytes.NewReader(frame)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		r.Reset(frame)
		if _, err := ReadFrame(r, 0); err != nil {
			b.Fatal(err)
		}
	}
}
