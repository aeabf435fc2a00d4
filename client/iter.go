package client

import (
	"context"
	"iter"
	"strconv"
	"time"
)

// The iterators fetch one page at a time, as the loop asks for items. A failed page (after
// the retry policy gave up) is yielded as the error, with a nil item, and ends the
// iteration. Breaking out of the loop stops fetching.
//
//	for a, err := range c.Accounts(ctx, client.ListAccountsParams{Owner: "user:alice"}) {
//		if err != nil {
//			return err
//		}
//		fmt.Println(a.ID, a.Balance.Available)
//	}

// pages yields every item of the pages fetch returns, from cursor on, until a page has no
// next cursor.
func pages[T any](cursor string, fetch func(cursor string) (*Page[T], error)) iter.Seq2[*T, error] {
	return func(yield func(*T, error) bool) {
		for {
			p, err := fetch(cursor)
			if err != nil {
				yield(nil, err)
				return
			}
			for i := range p.Items {
				if !yield(&p.Items[i], nil) {
					return
				}
			}
			if p.NextCursor == "" || p.NextCursor == cursor {
				return
			}
			cursor = p.NextCursor
		}
	}
}

// APIKeys iterates over the live API keys, ordered by id (admin), from p.Cursor on.
func (c *Client) APIKeys(ctx context.Context, p ListParams, opts ...CallOption) iter.Seq2[*APIKey, error] {
	return pages(p.Cursor, func(cur string) (*Page[APIKey], error) {
		p.Cursor = cur
		return c.ListAPIKeys(ctx, p, opts...)
	})
}

// Accounts iterates over the accounts p selects, ordered by id.
func (c *Client) Accounts(ctx context.Context, p ListAccountsParams, opts ...CallOption) iter.Seq2[*Account, error] {
	return pages(p.Cursor, func(cur string) (*Page[Account], error) {
		p.Cursor = cur
		return c.ListAccounts(ctx, p, opts...)
	})
}

// Entries iterates over an account's entries, newest first.
func (c *Client) Entries(ctx context.Context, accountID string, p ListParams, opts ...CallOption) iter.Seq2[*Entry, error] {
	return pages(p.Cursor, func(cur string) (*Page[Entry], error) {
		p.Cursor = cur
		return c.ListEntries(ctx, accountID, p, opts...)
	})
}

// Transfers iterates over the transfers p selects, newest first.
func (c *Client) Transfers(ctx context.Context, p ListTransfersParams, opts ...CallOption) iter.Seq2[*Transfer, error] {
	return pages(p.Cursor, func(cur string) (*Page[Transfer], error) {
		p.Cursor = cur
		return c.ListTransfers(ctx, p, opts...)
	})
}

// Journal iterates over the journal's records with seq > p.After, in order, up to the head
// as it is when the last page is read.
func (c *Client) Journal(ctx context.Context, p JournalParams, opts ...CallOption) iter.Seq2[*Record, error] {
	start := ""
	if p.After != 0 {
		start = strconv.FormatUint(p.After, 10)
	}
	return pages(start, func(cur string) (*Page[Record], error) {
		p.After = 0
		if cur != "" {
			var err error
			if p.After, err = strconv.ParseUint(cur, 10, 64); err != nil {
				return nil, err
			}
		}
		return c.ListJournal(ctx, p, opts...)
	})
}

// eventsWait is how long each long poll of Events waits: the most the server allows.
const eventsWait = 30 * time.Second

// Events iterates over the journal's events after p.After, in journal order, for ever: when
// it has yielded every event it long-polls for the next ones (p.Wait is ignored). It ends
// when the loop breaks, when ctx ends (yielding ctx's error), or when a poll fails after
// the retry policy gave up (yielding that error). To resume later, pass the ID of the last
// event handled as After.
func (c *Client) Events(ctx context.Context, p EventsParams, opts ...CallOption) iter.Seq2[*Event, error] {
	return func(yield func(*Event, error) bool) {
		p.Wait = eventsWait
		for {
			page, err := c.ListEvents(ctx, p, opts...)
			if err != nil {
				yield(nil, err)
				return
			}
			for i := range page.Items {
				if !yield(&page.Items[i], nil) {
					return
				}
			}
			p.After = page.NextCursor
			if err := ctx.Err(); err != nil {
				yield(nil, err)
				return
			}
		}
	}
}
