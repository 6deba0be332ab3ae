"""Store agents: enrolment by device key, revocation, and the stream of signed scans they send."""
