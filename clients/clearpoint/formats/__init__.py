"""The formats partners, store agents and the platform all speak, importable without the platform.

`voucher_codes`: the signed voucher code (COSE_Sign1 / CWT in Base45), docs/voucher-codes.md.
`scan_signatures`: the bytes an agent signs for each scan, docs/scan-signatures.md.
"""
