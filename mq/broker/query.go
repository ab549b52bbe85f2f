package broker

import (
	"strconv"
	"time"

	"qianlang.io/mq/remoting"
)

// defaultQueryMaxNum caps unique-key queries, as Java's defaultQueryMaxNum.
const defaultQueryMaxNum = 32

// queryMessage serves QUERY_MESSAGE: the records of a topic indexed under a
// key (or a unique key) within a time range.
func (b *Broker) queryMessage(req *remoting.Command) *remoting.Command {
	f := req.ExtFields
	topic, key := f.Str("topic"), f.Str("key")
	maxNum, err := f.Int64Or("maxNum", defaultQueryMaxNum)
	if err != nil {
		return req.Errorf(remoting.InvalidParameter, "%v", err)
	}
	begin, _ := f.Int64Or("beginTimestamp", 0)
	end, _ := f.Int64Or("endTimestamp", time.Now().UnixMilli())
	if f.Bool("_UNIQUE_KEY_QUERY", false) {
		maxNum = defaultQueryMaxNum
	}
	recs, err := b.store.QueryByKey(topic, key, int(max(1, min(maxNum, 64*1024))), begin, end)
	if err != nil {
		return req.Errorf(remoting.SystemError, "%v", err)
	}
	if len(recs) == 0 {
		return req.Errorf(remoting.QueryNotFound, "can not find message, maybe time range not correct")
	}
	resp := req.Response(remoting.Success, "")
	resp.ExtFields = remoting.Fields{
		{Key: "indexLastUpdateTimestamp", Value: strconv.FormatInt(time.Now().UnixMilli(), 10)},
		{Key: "indexLastUpdatePhyoffset", Value: strconv.FormatInt(b.store.Stats().Dispatched, 10)},
	}
	for _, r := range recs {
		resp.Body = append(resp.Body, r...)
	}
	return resp
}

// viewMessage serves VIEW_MESSAGE_BY_ID: the record at a physical offset.
func (b *Broker) viewMessage(req *remoting.Command) *remoting.Command {
	off, err := req.ExtFields.Int64("offset")
	if err != nil {
		return req.Errorf(remoting.InvalidParameter, "%v", err)
	}
	rec, err := b.store.ReadMessage(off)
	if err != nil {
		return req.Errorf(remoting.SystemError, "can not find message by the offset, %d: %v", off, err)
	}
	resp := req.Response(remoting.Success, "")
	resp.Body = rec
	return resp
}
