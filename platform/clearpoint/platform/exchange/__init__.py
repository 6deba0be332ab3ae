"""Exchange: platform points, each channel's points, members, and the ledger every movement is kept in."""
