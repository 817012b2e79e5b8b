package kurrentdb

// This file is OUR MODEL OF THE SERVER, NOT THE SERVER.
//
// standin is an in-process gRPC stand-in for KurrentDB's Streams service
// (event_store.client.streams.Streams), built from the client's own generated server interface,
// so the real client talks to it over a real gRPC connection on 127.0.0.1. It implements only
// what this adapter uses, the way we understand the server from its source and the client:
//
//   - Append (client streaming): options first, then proposed messages; expected revision
//     (revision / no stream / any / stream exists) checked atomically with the write; success with
//     the last event's revision and position; WrongExpectedVersion with the current revision.
//     Required metadata "type" and "content-type" are checked like the server does.
//   - Read of a stream, forwards and backwards, from start / end / a revision (backwards from past
//     the end starts at the last event), StreamNotFound for a stream without events.
//   - Read of $all with a count (no filter), forwards (from a position, inclusive) and backwards
//     (before a position, or from the end).
//   - Read of $all as a subscription: Confirmation, catch-up after the start position (exclusive),
//     CaughtUp (with timestamp, without, or never: see caughtUpMode), then live events; filters on
//     stream name or event type by prefixes or regex (Go's regexp standing in for .NET's).
//     Filtered subscriptions also get Checkpoint messages every search window * checkpoint
//     interval multiplier records looked at, in catch-up and live, and one when catch-up reaches
//     the end (see subscribeAll for the details we model and those we leave out).
//   - Every event carries the "type", "content-type" and "created" system metadata (without
//     "created" the client calls log.Fatalf).
//   - Positions are byte-offset-like: each record advances the log by its size, commit == prepare,
//     and the log starts after a model "epoch record", so positions have gaps and none is 0.
//     Checkpoints at the start of a catch-up read carry prepare position 0, like the server's.
//
// It does not model: authentication, ACLs, TLS, gossip/cluster discovery, ServerFeatures (the
// client treats Unimplemented as an old server), leader redirects, deletes and tombstones,
// stream metadata ($max-count, $tb...), link events and projections, idempotent re-appends by
// event id, explicit transactions, size limits (MaxAppendSize), the live buffer and FellBehind
// (and the second catch-up and CaughtUp that follow it), server-side deadlines, and durability.
// Everything is in memory and survives clients coming and going, so a reopened Store sees it.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// caughtUpMode is what the stand-in sends when a subscription reaches the end of the log.
type caughtUpMode int

const (
	caughtUpFull caughtUpMode = iota // CaughtUp with timestamp and position (KurrentDB 24+)
	caughtUpBare                     // CaughtUp without any field
	caughtUpNone                     // nothing (EventStoreDB before 23.10)
)

type standinOptions struct {
	caughtUp      caughtUpMode
	noCheckpoints bool // no Checkpoint messages at all
	oddReadReply  bool // stream reads first send a last_stream_position message
}

type record struct {
	id          uuid.UUID
	stream      string
	rev         uint64
	typ         string
	contentType string
	created     int64 // .NET ticks (100 ns) since the Unix epoch, as the server sends them
	data, meta  []byte
	pos         uint64 // commit == prepare
	end         uint64 // where the next record starts
}

type standin struct {
	api.UnimplementedStreamsServer

	mu      sync.Mutex
	opts    standinOptions // oddReadReply may change under mu
	log     []*record
	streams map[string][]*record
	nextPos uint64
	changed chan struct{} // closed and replaced on every append
	appends int           // append calls that wrote events
	// subFilter is the filter options of the last subscription request.
	subFilter *api.ReadReq_Options_FilterOptions

	srvMu sync.Mutex
	addr  string
	srv   *grpc.Server
	done  chan struct{}
}

// startStandin serves a fresh stand-in on 127.0.0.1 until the test ends.
func startStandin(t testing.TB, opts standinOptions) *standin {
	t.Helper()
	s := &standin{opts: opts, streams: map[string][]*record{}, nextPos: 256, changed: make(chan struct{})}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s.addr = lis.Addr().String()
	s.serve(lis)
	t.Cleanup(s.stop)
	return s
}

func (s *standin) serve(lis net.Listener) {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	srv := grpc.NewServer()
	api.RegisterStreamsServer(srv, s)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	s.srv, s.done = srv, done
}

// stop ends the server (and every call in flight); the data stays.
func (s *standin) stop() {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.srv != nil {
		s.srv.Stop()
		<-s.done
		s.srv = nil
	}
}

// restart serves the same data on the same address again.
func (s *standin) restart(t testing.TB) {
	t.Helper()
	s.stop()
	var lis net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if lis, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("listen again on %s: %v", s.addr, err)
	}
	s.serve(lis)
}

func (s *standin) url() string {
	return "kurrentdb://" + s.addr + "?tls=false&maxDiscoverAttempts=2&discoveryInterval=10"
}

// seed writes an event directly, for streams the adapter must not write (system streams).
func (s *standin) seed(stream, typ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.write(stream, []*api.AppendReq_ProposedMessage{{
		Id:       uuidToProto(uuid.New()),
		Metadata: map[string]string{"type": typ, "content-type": "application/json"},
		Data:     []byte("{}"),
	}})
}

// write appends under s.mu and returns the last record.
func (s *standin) write(stream string, msgs []*api.AppendReq_ProposedMessage) *record {
	var last *record
	for _, m := range msgs {
		id, _ := uuidFromProto(m.GetId())
		r := &record{
			id:          id,
			stream:      stream,
			rev:         uint64(len(s.streams[stream])),
			typ:         m.GetMetadata()["type"],
			contentType: m.GetMetadata()["content-type"],
			created:     time.Now().UnixNano() / 100,
			data:        m.GetData(),
			meta:        m.GetCustomMetadata(),
			pos:         s.nextPos,
		}
		s.nextPos += 64 + uint64(len(stream)+len(r.typ)+len(r.data)+len(r.meta))
		r.end = s.nextPos
		s.log = append(s.log, r)
		s.streams[stream] = append(s.streams[stream], r)
		last = r
	}
	if last != nil {
		s.appends++
		close(s.changed)
		s.changed = make(chan struct{})
	}
	return last
}

func (s *standin) appendCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appends
}

// positions returns the position of every record in $all, in order.
func (s *standin) positions() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]uint64, len(s.log))
	for i, r := range s.log {
		out[i] = r.pos
	}
	return out
}

// lastFilter returns the filter options of the last subscription request.
func (s *standin) lastFilter() *api.ReadReq_Options_FilterOptions {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subFilter
}

func (s *standin) eventID(stream string, rev uint64) uuid.UUID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams[stream][rev].id
}

func (s *standin) contentType(stream string, rev uint64) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams[stream][rev].contentType
}

func (s *standin) Append(stream grpc.ClientStreamingServer[api.AppendReq, api.AppendResp]) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	opts := first.GetOptions()
	if opts == nil {
		return status.Error(codes.InvalidArgument, "first append message must carry the options")
	}
	name := string(opts.GetStreamIdentifier().GetStreamName())
	var msgs []*api.AppendReq_ProposedMessage
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		pm := m.GetProposedMessage()
		if pm == nil {
			return status.Error(codes.InvalidArgument, "expected a proposed message")
		}
		for _, key := range []string{"type", "content-type"} {
			if _, ok := pm.GetMetadata()[key]; !ok {
				return status.Errorf(codes.InvalidArgument, "required metadata property %q missing", key)
			}
		}
		msgs = append(msgs, pm)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	revs := s.streams[name]
	exists, last := len(revs) > 0, uint64(len(revs))-1
	var ok bool
	wrong := &api.AppendResp_WrongExpectedVersion{}
	switch e := opts.GetExpectedStreamRevision().(type) {
	case *api.AppendReq_Options_Revision:
		ok = exists && last == e.Revision
		wrong.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: e.Revision}
	case *api.AppendReq_Options_NoStream:
		ok = !exists
		wrong.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: &shared.Empty{}}
	case *api.AppendReq_Options_Any:
		ok = true
	case *api.AppendReq_Options_StreamExists:
		ok = exists
		wrong.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: &shared.Empty{}}
	default:
		return status.Error(codes.InvalidArgument, "expected stream revision missing")
	}
	if !ok {
		if exists {
			wrong.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: last}
			wrong.CurrentRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_CurrentRevision_20_6_0{CurrentRevision_20_6_0: last}
		} else {
			wrong.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &shared.Empty{}}
			wrong.CurrentRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_NoStream_20_6_0{NoStream_20_6_0: &shared.Empty{}}
		}
		return stream.SendAndClose(&api.AppendResp{Result: &api.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: wrong}})
	}
	success := &api.AppendResp_Success{}
	r := s.write(name, msgs)
	switch {
	case r != nil:
		success.CurrentRevisionOption = &api.AppendResp_Success_CurrentRevision{CurrentRevision: r.rev}
		success.PositionOption = &api.AppendResp_Success_Position{Position: &api.AppendResp_Position{CommitPosition: r.pos, PreparePosition: r.pos}}
	case exists:
		success.CurrentRevisionOption = &api.AppendResp_Success_CurrentRevision{CurrentRevision: last}
		success.PositionOption = &api.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}}
	default:
		success.CurrentRevisionOption = &api.AppendResp_Success_NoStream{NoStream: &shared.Empty{}}
		success.PositionOption = &api.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}}
	}
	return stream.SendAndClose(&api.AppendResp{Result: &api.AppendResp_Success_{Success: success}})
}

func (s *standin) Read(req *api.ReadReq, out grpc.ServerStreamingServer[api.ReadResp]) error {
	o := req.GetOptions()
	if o == nil || o.GetUuidOption() == nil {
		return status.Error(codes.InvalidArgument, "options and uuid_option are required")
	}
	_, filtered := o.GetFilterOption().(*api.ReadReq_Options_Filter)
	switch {
	case o.GetStream() != nil && o.GetSubscription() == nil && !filtered:
		return s.readStream(o, out)
	case o.GetAll() != nil && o.GetSubscription() == nil && !filtered:
		return s.readAll(o, out)
	case o.GetAll() != nil && o.GetSubscription() != nil && o.GetReadDirection() == api.ReadReq_Options_Forwards:
		return s.subscribeAll(o, out)
	}
	return status.Error(codes.Unimplemented, "the stand-in does not model this read")
}

func (s *standin) readStream(o *api.ReadReq_Options, out grpc.ServerStreamingServer[api.ReadResp]) error {
	so := o.GetStream()
	name := string(so.GetStreamIdentifier().GetStreamName())
	s.mu.Lock()
	revs, odd := s.streams[name], s.opts.oddReadReply
	var page []*record
	if len(revs) > 0 {
		last := uint64(len(revs) - 1)
		var from uint64
		switch r := so.GetRevisionOption().(type) {
		case *api.ReadReq_Options_StreamOptions_Revision:
			from = r.Revision
		case *api.ReadReq_Options_StreamOptions_End:
			from = last + 1
			if o.GetReadDirection() == api.ReadReq_Options_Backwards {
				from = last
			}
		}
		count := o.GetCount()
		if o.GetReadDirection() == api.ReadReq_Options_Forwards {
			for r := from; r <= last && uint64(len(page)) < count; r++ {
				page = append(page, revs[r])
			}
		} else {
			for r := int64(min(from, last)); r >= 0 && uint64(len(page)) < count; r-- {
				page = append(page, revs[r])
			}
		}
	}
	s.mu.Unlock()

	if len(revs) == 0 {
		return out.Send(&api.ReadResp{Content: &api.ReadResp_StreamNotFound_{StreamNotFound: &api.ReadResp_StreamNotFound{
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(name)},
		}}})
	}
	if odd {
		if err := out.Send(&api.ReadResp{Content: &api.ReadResp_LastStreamPosition{LastStreamPosition: uint64(len(revs) - 1)}}); err != nil {
			return err
		}
	}
	return sendAll(out, page)
}

func (s *standin) readAll(o *api.ReadReq_Options, out grpc.ServerStreamingServer[api.ReadResp]) error {
	s.mu.Lock()
	log := s.log
	s.mu.Unlock()
	count := o.GetCount()
	var page []*record
	ao := o.GetAll()
	if o.GetReadDirection() == api.ReadReq_Options_Forwards {
		for _, r := range log {
			if p := ao.GetPosition(); p != nil && r.pos < p.GetCommitPosition() {
				continue
			}
			if ao.GetEnd() != nil || uint64(len(page)) >= count {
				break
			}
			page = append(page, r)
		}
	} else {
		for i := len(log) - 1; i >= 0 && uint64(len(page)) < count; i-- {
			if p := ao.GetPosition(); p != nil && log[i].pos >= p.GetCommitPosition() {
				continue
			}
			if ao.GetStart() != nil {
				break
			}
			page = append(page, log[i])
		}
	}
	return sendAll(out, page)
}

func sendAll(out grpc.ServerStreamingServer[api.ReadResp], page []*record) error {
	for _, r := range page {
		if err := out.Send(eventResp(r)); err != nil {
			return err
		}
	}
	return nil
}

// readBatch is the server's DefaultReadBatchSize: a catch-up read of a filtered subscription
// returns at most this many matching events (and looks at most at the search window of records).
const readBatch = 32

// subscribeAll models a catch-up subscription to $all (the server's AllSubscription and
// AllSubscriptionFiltered enumerators, as we read them):
//
//   - Catch-up reads the log in pages; with a filter a page looks at up to window records (the
//     request's max search window, 32 without one) and returns up to readBatch matching ones.
//   - "checkpoint" is the last event sent, or the start of the last page read if that is later:
//     (first record's position, 0), the server's CurrentPos, whose prepare part is 0.
//   - Filtered only: after a page that brings the records looked at to window*multiplier, a
//     Checkpoint at "checkpoint" (the counter keeps the remainder); at the end of the log a
//     Checkpoint; live, a Checkpoint at the position of every window*multiplier-th record looked
//     at (matching or not).
//   - CaughtUp (see caughtUpMode) carrying "checkpoint" when going live; with nothing after the
//     start position it goes live at once, without a catch-up read or its Checkpoint.
//
// Simplifications: the live counter starts when the stand-in goes live (the server counts from
// the subscription's start, events it later skips as already sent included); no live buffer, so
// never FellBehind and never a second catch-up with a second CaughtUp.
func (s *standin) subscribeAll(o *api.ReadReq_Options, out grpc.ServerStreamingServer[api.ReadResp]) error {
	match, filtered, err := matcher(o)
	if err != nil {
		return err
	}
	window, interval := uint64(0), uint64(0)
	if filtered {
		fo := o.GetFilter()
		window = readBatch
		if _, ok := fo.GetWindow().(*api.ReadReq_Options_FilterOptions_Max); ok {
			window = uint64(fo.GetMax())
		}
		if window == 0 || fo.GetCheckpointIntervalMultiplier() == 0 {
			return status.Error(codes.InvalidArgument, "search window and checkpoint interval multiplier must be positive")
		}
		interval = window * uint64(fo.GetCheckpointIntervalMultiplier())
	}
	checkpoints := filtered && !s.opts.noCheckpoints
	if err := out.Send(&api.ReadResp{Content: &api.ReadResp_Confirmation{Confirmation: &api.ReadResp_SubscriptionConfirmation{
		SubscriptionId: uuid.NewString(),
	}}}); err != nil {
		return err
	}

	// next is the index in s.log of the first record after the start position; checkpoint is
	// unset (the server's "head of TF") when subscribing from the start.
	var checkpoint logPos
	hasCheckpoint := false
	s.mu.Lock()
	s.subFilter = o.GetFilter()
	next := 0
	switch {
	case o.GetAll().GetEnd() != nil:
		next = len(s.log)
		if next > 0 {
			checkpoint, hasCheckpoint = logPos{s.log[next-1].pos, s.log[next-1].pos}, true
		}
	case o.GetAll().GetPosition() != nil:
		p := o.GetAll().GetPosition()
		checkpoint, hasCheckpoint = logPos{p.GetCommitPosition(), p.GetPreparePosition()}, true
		for next < len(s.log) && !(logPos{s.log[next].pos, s.log[next].pos}).after(checkpoint) {
			next++
		}
	}
	// Nothing after the start position: the server goes live at once, without a catch-up read
	// and so without its closing Checkpoint.
	live := next >= len(s.log)
	s.mu.Unlock()
	pageStart := checkpoint // the first page starts at the requested position

	sendCheckpoint := func(p logPos) error {
		return out.Send(&api.ReadResp{Content: &api.ReadResp_Checkpoint_{Checkpoint: &api.ReadResp_Checkpoint{
			CommitPosition: p.commit, PreparePosition: p.prepare, Timestamp: timestamppb.Now(),
		}}})
	}

	// Catch-up.
	considered := uint64(0)
	for !live {
		s.mu.Lock()
		var page []*record
		matched, atEnd := 0, false
		for {
			if next >= len(s.log) {
				atEnd = true
				break
			}
			if filtered && (uint64(len(page)) >= window || matched >= readBatch) {
				break
			}
			r := s.log[next]
			next++
			page = append(page, r)
			if match(r) {
				matched++
			}
		}
		s.mu.Unlock()

		for _, r := range page {
			if match(r) {
				if err := out.Send(eventResp(r)); err != nil {
					return err
				}
				checkpoint, hasCheckpoint = logPos{r.pos, r.pos}, true
			}
		}
		if len(page) > 0 {
			if !hasCheckpoint || checkpoint.before(pageStart) {
				checkpoint, hasCheckpoint = pageStart, true
			}
			pageStart = logPos{page[len(page)-1].end, 0}
		}
		considered += uint64(len(page))
		if atEnd {
			live = true
			if checkpoints && hasCheckpoint {
				if err := sendCheckpoint(checkpoint); err != nil {
					return err
				}
			}
			break
		}
		if checkpoints && considered >= interval {
			considered %= interval
			if hasCheckpoint {
				if err := sendCheckpoint(checkpoint); err != nil {
					return err
				}
			}
		}
	}
	var cu *api.ReadResp_CaughtUp
	switch s.opts.caughtUp {
	case caughtUpFull:
		cu = &api.ReadResp_CaughtUp{Timestamp: timestamppb.Now()}
		if hasCheckpoint {
			cu.Position = &api.ReadResp_Position{CommitPosition: checkpoint.commit, PreparePosition: checkpoint.prepare}
		}
	case caughtUpBare:
		cu = &api.ReadResp_CaughtUp{}
	}
	if cu != nil {
		if err := out.Send(&api.ReadResp{Content: &api.ReadResp_CaughtUp_{CaughtUp: cu}}); err != nil {
			return err
		}
	}

	// Live.
	considered = 0
	for {
		s.mu.Lock()
		batch, changed := s.log[next:], s.changed
		next = len(s.log)
		s.mu.Unlock()
		for _, r := range batch {
			if match(r) {
				if err := out.Send(eventResp(r)); err != nil {
					return err
				}
			}
			if considered++; checkpoints && considered >= interval {
				considered = 0
				if err := sendCheckpoint(logPos{r.pos, r.pos}); err != nil {
					return err
				}
			}
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-out.Context().Done():
			return out.Context().Err()
		case <-changed:
		}
	}
}

func (a logPos) after(b logPos) bool { return b.before(a) }

// matcher builds the subscription filter of o; filtered is false without one.
func matcher(o *api.ReadReq_Options) (match func(*record) bool, filtered bool, err error) {
	f := o.GetFilter()
	if f == nil {
		return func(*record) bool { return true }, false, nil
	}
	expr, field := f.GetStreamIdentifier(), func(r *record) string { return r.stream }
	if f.GetEventType() != nil {
		expr, field = f.GetEventType(), func(r *record) string { return r.typ }
	}
	if expr == nil {
		return nil, false, status.Error(codes.InvalidArgument, "filter without expression")
	}
	if expr.GetRegex() != "" {
		re, err := regexp.Compile(expr.GetRegex())
		if err != nil {
			return nil, false, status.Errorf(codes.InvalidArgument, "filter regex: %v", err)
		}
		return func(r *record) bool { return re.MatchString(field(r)) }, true, nil
	}
	prefixes := expr.GetPrefix()
	return func(r *record) bool {
		for _, p := range prefixes {
			if strings.HasPrefix(field(r), p) {
				return true
			}
		}
		return false
	}, true, nil
}

func eventResp(r *record) *api.ReadResp {
	return &api.ReadResp{Content: &api.ReadResp_Event{Event: &api.ReadResp_ReadEvent{
		Event: &api.ReadResp_ReadEvent_RecordedEvent{
			Id:               uuidToProto(r.id),
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(r.stream)},
			StreamRevision:   r.rev,
			PreparePosition:  r.pos,
			CommitPosition:   r.pos,
			Metadata: map[string]string{
				"type":         r.typ,
				"content-type": r.contentType,
				"created":      strconv.FormatInt(r.created, 10),
			},
			CustomMetadata: r.meta,
			Data:           r.data,
		},
		Position: &api.ReadResp_ReadEvent_CommitPosition{CommitPosition: r.pos},
	}}}
}

func uuidToProto(id uuid.UUID) *shared.UUID {
	return &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
		MostSignificantBits:  int64(binary.BigEndian.Uint64(id[:8])),
		LeastSignificantBits: int64(binary.BigEndian.Uint64(id[8:])),
	}}}
}

func uuidFromProto(u *shared.UUID) (uuid.UUID, error) {
	if st := u.GetStructured(); st != nil {
		var id uuid.UUID
		binary.BigEndian.PutUint64(id[:8], uint64(st.GetMostSignificantBits()))
		binary.BigEndian.PutUint64(id[8:], uint64(st.GetLeastSignificantBits()))
		return id, nil
	}
	id, err := uuid.Parse(u.GetString_())
	if err != nil {
		return uuid.Nil, fmt.Errorf("event id: %w", err)
	}
	return id, nil
}

// openStandin opens a Store on s and closes it when the test ends.
func openStandin(t testing.TB, s *standin) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := Open(ctx, s.url(), nil)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}
