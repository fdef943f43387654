"""Pages for people: server-rendered HTML over the read side (`/`, `/leads`, `/leads/{id}`,
`/accounts/{domain}`), keyed like the API (the key stays in the tab's sessionStorage)."""
