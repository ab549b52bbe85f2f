package loadgen

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsSender publishes to a JetStream stream asynchronously; one goroutine
// per sender collects the acks in order.
type natsSender struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	subject string
	futures chan natsPending
}

type natsPending struct {
	f    jetstream.PubAckFuture
	done func(error)
}

// NewNATSSenders connects n publishers to url and makes sure a stream
// holding subject exists with the given replica count (file storage).
func NewNATSSenders(ctx context.Context, url, stream, subject string, replicas, n, window int) ([]Sender, error) {
	out := make([]Sender, n)
	for i := range out {
		nc, err := nats.Connect(url)
		if err != nil {
			return nil, err
		}
		js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(window))
		if err != nil {
			return nil, err
		}
		if i == 0 {
			err := createStream(ctx, js, jetstream.StreamConfig{
				Name: stream, Subjects: []string{subject}, Storage: jetstream.FileStorage, Replicas: replicas,
			})
			if err != nil {
				return nil, fmt.Errorf("loadgen: create stream: %w", err)
			}
		}
		s := &natsSender{nc: nc, js: js, subject: subject, futures: make(chan natsPending, window*2)}
		go s.collect()
		out[i] = s
	}
	return out, nil
}

func (s *natsSender) collect() {
	for p := range s.futures {
		select {
		case <-p.f.Ok():
			p.done(nil)
		case err := <-p.f.Err():
			p.done(err)
		case <-time.After(30 * time.Second):
			p.done(fmt.Errorf("loadgen: nats ack timeout"))
		}
	}
}

func (s *natsSender) Send(bodies [][]byte, done func(error)) error {
	if len(bodies) != 1 {
		return fmt.Errorf("loadgen: the nats adapter sends single messages")
	}
	f, err := s.js.PublishAsync(s.subject, bodies[0])
	if err != nil {
		return err
	}
	s.futures <- natsPending{f: f, done: done}
	return nil
}

func (s *natsSender) Close() error {
	close(s.futures)
	s.nc.Close()
	return nil
}

// createStream creates the stream, retrying while a fresh cluster has no
// JetStream meta leader yet (its election can take several seconds).
func createStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := js.CreateOrUpdateStream(cctx, cfg)
		cancel()
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(500 * time.Millisecond)
	}
}
