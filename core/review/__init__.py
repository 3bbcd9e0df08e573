"""Steps 1.3 and 1.7: the review store, placement, the review API and server, gates and thumbnails."""
