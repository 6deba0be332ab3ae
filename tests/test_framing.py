"""Framers, AIM identifiers and the wrong-baud-rate simulation: pure functions, exact inputs."""

from __future__ import annotations

import pytest
from clearpoint.scanner_agent.aim import split_aim, symbology_name
from clearpoint.scanner_agent.framing import (
    CR,
    CRLF,
    LF,
    TAB,
    Frame,
    LrcCoverage,
    Problem,
    ProblemKind,
    StxEtxFramer,
    TerminatorFramer,
    TextProfile,
    TimeoutFramer,
    lrc,
    text_profile,
)
from clearpoint.scanner_agent.virtual_scanner import uart_misread
from hypothesis import given, settings
from hypothesis import strategies as st

GS = b"\x1d"


def frames(outputs: list[Frame | Problem]) -> list[bytes]:
    return [o.data for o in outputs if isinstance(o, Frame)]


def problems(outputs: list[Frame | Problem]) -> list[Problem]:
    return [o for o in outputs if isinstance(o, Problem)]


def feed_chunks(framer, chunks: list[bytes], now: float | None = None) -> list[Frame | Problem]:
    out: list[Frame | Problem] = []
    for chunk in chunks:
        out += framer.feed(chunk, now)
    return out


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for p in points:
        pieces.append(data[last:p])
        last = p
    pieces.append(data[last:])
    return pieces


# --- AIM -----------------------------------------------------------------------------------------------------------


def test_aim_identifiers_are_split_off() -> None:
    assert split_aim(b"]Q1https://example.test/v") == ("]Q1", b"https://example.test/v")
    assert split_aim(b"]E04006381333931") == ("]E0", b"4006381333931")
    assert split_aim(b"]C1" + b"0104006381333931" + GS + b"10ABC") == ("]C1", b"0104006381333931\x1d10ABC")
    assert split_aim(b"]d2010400") == ("]d2", b"010400")
    assert split_aim(b"]A0CODE39") == ("]A0", b"CODE39")
    assert split_aim(b"]I012345678") == ("]I0", b"12345678")
    assert split_aim(b"]Q1") == ("]Q1", b"")


def test_malformed_aim_prefixes_stay_in_the_data() -> None:
    for data in (b"]J1abc", b"]Q-abc", b"]Q", b"]", b"Q1abc", b"]1Qabc", b"]Q\xc3\xa9", b"]\xff1", b""):
        assert split_aim(data) == ("", data)


def test_symbology_names() -> None:
    assert symbology_name("]Q1") == "QR Code"
    assert symbology_name("]C1") == "GS1-128"
    assert symbology_name("]C0") == "Code 128"
    assert symbology_name("]d2") == "GS1 DataMatrix"
    assert symbology_name("]E4") == "EAN-8"
    assert symbology_name("]I0") == "Interleaved 2 of 5 (ITF)"
    assert symbology_name("") == ""
    assert symbology_name("]J1").startswith("unknown")


# --- terminator ----------------------------------------------------------------------------------------------------


def test_terminators_of_every_kind() -> None:
    for term in (CR, LF, CRLF, TAB, b"\x03", b"<END>"):
        framer = TerminatorFramer(term)
        out = framer.feed(b"ABC" + term + b"12" + GS + b"3" + term + b"par")
        assert frames(out) == [b"ABC", b"12\x1d3"], term
        assert frames(framer.feed(b"tial" + term)) == [b"partial"]
        assert not problems(out)


def test_crlf_split_across_chunks_gives_no_empty_frame() -> None:
    framer = TerminatorFramer(CRLF)
    assert feed_chunks(framer, [b"ABC\r", b"\nDEF\r", b"\n"]) == [Frame(b"ABC", None), Frame(b"DEF", None)]


def test_cr_mode_skips_the_lf_of_a_crlf_scanner_even_across_chunks() -> None:
    framer = TerminatorFramer(CR)
    out = feed_chunks(framer, [b"ABC\r", b"\nDEF\r\nGHI\r", b"\n", b"JKL\r"])
    assert frames(out) == [b"ABC", b"DEF", b"GHI", b"JKL"]
    assert not problems(out)


def test_cr_mode_stray_lf_and_empty_lines_are_dropped() -> None:
    framer = TerminatorFramer(CR)
    assert frames(feed_chunks(framer, [b"\r\r", b"\r\n", b"X\r"])) == [b"X"]


def test_lf_mode_strips_a_trailing_cr() -> None:
    framer = TerminatorFramer(LF)
    assert frames(feed_chunks(framer, [b"ABC\r", b"\n", b"\n", b"DEF\r\n"])) == [b"ABC", b"DEF"]


def test_frame_carries_the_time_of_its_last_byte() -> None:
    framer = TerminatorFramer(CR)
    assert framer.feed(b"AB", 1.0) == []
    assert framer.feed(b"C\rD", 1.01) == [Frame(b"ABC", 1.01)]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from([b"ABC", b"0123456789", b"]Q1https://x.test/a", b"01" + GS + b"21xyz", "é€".encode()])),
    st.sampled_from([CR, LF, CRLF, TAB]),
    st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
)
def test_any_chunking_gives_the_same_frames(scans: list[bytes], term: bytes, cuts: list[int]) -> None:
    stream = b"".join(s + term for s in scans)
    out = feed_chunks(TerminatorFramer(term), split_at(stream, cuts))
    assert frames(out) == scans
    assert not problems(out)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.sampled_from([b"ABC", b"]E04006381333931", b"01" + GS + b"17", "ü".encode()]), max_size=8),
    st.booleans(),
    st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
)
def test_stx_etx_any_chunking(scans: list[bytes], with_lrc: bool, cuts: list[int]) -> None:
    stream = b"".join(b"\x02" + s + b"\x03" + (bytes([lrc(s)]) if with_lrc else b"") for s in scans)
    out = feed_chunks(StxEtxFramer(check_lrc=with_lrc), split_at(stream, cuts))
    assert frames(out) == scans
    assert not problems(out)


def test_100kb_line_without_terminator_gives_one_warning_and_resyncs() -> None:
    framer = TerminatorFramer(CR)
    line = b"A" * 102_400
    out = feed_chunks(framer, [line[i : i + 1000] for i in range(0, len(line), 1000)])
    assert out == []  # nothing yet: the count is reported once, when the line finally ends
    out = framer.feed(b"\rGOOD\r")
    assert frames(out) == [b"GOOD"]
    [problem] = problems(out)
    assert problem.kind == ProblemKind.OVERFLOW
    assert problem.nbytes == 102_400
    assert "discarded 102400 bytes without a terminator (max 4096)" in problem.message
    assert "suffix setting" in problem.message


def test_overlong_line_in_one_chunk() -> None:
    out = TerminatorFramer(CRLF, max_len=10).feed(b"X" * 11 + b"\r\nOK\r\n" + b"Y" * 10 + b"\r\n")
    assert frames(out) == [b"OK", b"Y" * 10]
    assert [p.nbytes for p in problems(out)] == [11]


def test_overlong_line_ends_at_a_quiet_gap() -> None:
    framer = TerminatorFramer(CR, max_len=100, stale_after=0.5)
    assert framer.feed(b"Z" * 500, 1.0) == []
    assert framer.deadline() == 1.5
    [problem] = framer.idle(1.6)
    assert problem.kind == ProblemKind.OVERFLOW and problem.nbytes == 500
    assert frames(framer.feed(b"GOOD\r", 2.0)) == [b"GOOD"]


def test_stale_partial_is_dropped_not_glued_to_the_next_scan() -> None:
    framer = TerminatorFramer(CR, stale_after=0.5)
    framer.feed(b"HALF", 1.0)
    out = framer.feed(b"GOOD\r", 3.0)
    assert frames(out) == [b"GOOD"]
    [problem] = problems(out)
    assert problem.kind == ProblemKind.INCOMPLETE and "never got a terminator" in problem.message


def test_reset_reports_the_half_frame() -> None:
    framer = TerminatorFramer(CR)
    framer.feed(b"HALF")
    problem = framer.reset()
    assert problem is not None and problem.nbytes == 4 and "half frame" in problem.message
    assert framer.reset() is None
    assert frames(framer.feed(b"NEXT\r")) == [b"NEXT"]


# --- what is text --------------------------------------------------------------------------------------------------


def test_text_profile() -> None:
    assert not text_profile(b"ABC" + GS + b"\x1e\x04" + "€ü".encode()).is_garbage
    assert text_profile(b"ABC\x00DEF").is_garbage
    assert text_profile(b"\x80\xff\xfe\x81").looks_like_line_errors
    assert text_profile(b"\x01\x02\x05\x06").is_garbage
    assert not text_profile(b"\x01\x02\x05\x06").looks_like_line_errors
    assert not text_profile("Crème brûlée 12".encode("latin-1")).is_garbage  # QR byte mode is ISO-8859-1
    assert text_profile(b"W\tC\xc9\x99]\x98u").is_garbage  # one C1 control in eight bytes
    assert not text_profile(b"CODE" + b"\x1c" + b"X" * 10).is_garbage  # FS is a separator, not noise


def test_garbage_frames_are_reported_not_emitted() -> None:
    out = TerminatorFramer(CR).feed(b"\x80\x00\xff\xfe\xf0\rGOOD\r")
    assert frames(out) == [b"GOOD"]
    [problem] = problems(out)
    assert problem.kind == ProblemKind.GARBAGE
    assert "not text" in problem.message
    assert "wrong baud rate or parity?" in problem.message


def test_utf8_and_gs1_separators_pass() -> None:
    data = "]Q1Größe €".encode() + b"\x1d\x1e\x04"
    assert frames(TerminatorFramer(CR).feed(data + b"\r")) == [data]


# --- STX / ETX -----------------------------------------------------------------------------------------------------


def test_stx_etx_with_noise_outside() -> None:
    framer = StxEtxFramer()
    out = framer.feed(b"junk!\x02ABC\x03\r\n\x02DEF\x03")
    assert frames(out) == [b"ABC", b"DEF"]
    [noise] = problems(out)  # the CRLF between frames is not worth a warning; "junk!" is
    assert noise.kind == ProblemKind.NOISE and noise.nbytes == 5
    assert "noise outside STX/ETX" in noise.message


def test_lrc_coverages() -> None:
    data = b"0123ABC"
    x = 0
    for b in data:
        x ^= b
    assert lrc(data, LrcCoverage.DATA) == x
    assert lrc(data, LrcCoverage.DATA_ETX) == x ^ 0x03
    assert lrc(data, LrcCoverage.STX_DATA_ETX) == x ^ 0x03 ^ 0x02
    for coverage in LrcCoverage:
        framer = StxEtxFramer(check_lrc=True, lrc_coverage=coverage)
        assert frames(framer.feed(b"\x02" + data + b"\x03" + bytes([lrc(data, coverage)]))) == [data]


def test_lrc_mismatch_drops_the_frame() -> None:
    framer = StxEtxFramer(check_lrc=True)
    good = lrc(b"ABC")
    out = framer.feed(b"\x02ABC\x03" + bytes([good ^ 0x40]) + b"\x02ABC\x03" + bytes([good]))
    assert frames(out) == [b"ABC"]
    [problem] = problems(out)
    assert problem.kind == ProblemKind.LRC_MISMATCH and "LRC mismatch" in problem.message


def test_lrc_byte_equal_to_stx_is_not_a_frame_start() -> None:
    data = b"A" + bytes([ord("A") ^ 0x02 ^ 0x03])  # lrc(DATA_ETX) == 0x02
    assert lrc(data) == 0x02
    out = StxEtxFramer(check_lrc=True).feed(b"\x02" + data + b"\x03\x02\x02OK\x03" + bytes([lrc(b"OK")]))
    assert frames(out) == [data, b"OK"]


def test_stx_before_etx_drops_the_partial_frame() -> None:
    out = StxEtxFramer().feed(b"\x02HALF\x02FULL\x03")
    assert frames(out) == [b"FULL"]
    [problem] = problems(out)
    assert problem.kind == ProblemKind.INCOMPLETE


def test_stx_etx_overflow_resyncs_at_next_stx() -> None:
    framer = StxEtxFramer(max_len=4096)
    out = feed_chunks(framer, [b"\x02"] + [b"B" * 1024] * 100 + [b"\x02OK\x03"])
    assert frames(out) == [b"OK"]
    [problem] = problems(out)
    assert problem.kind == ProblemKind.OVERFLOW and problem.nbytes == 102_400


# --- timeout -------------------------------------------------------------------------------------------------------


def test_timeout_framing() -> None:
    framer = TimeoutFramer(0.05)
    assert framer.feed(b"AB", 1.000) == []
    assert framer.feed(b"C\r\n", 1.020) == []
    assert framer.deadline() == 1.07
    assert framer.idle(1.05) == []
    assert framer.idle(1.08) == [Frame(b"ABC", 1.020)]
    assert framer.deadline() is None
    # A new burst after a gap ends the previous frame even without an idle call in between.
    framer.feed(b"ONE", 2.0)
    assert framer.feed(b"TWO", 2.5) == [Frame(b"ONE", 2.0)]
    assert framer.idle(3.0) == [Frame(b"TWO", 2.5)]


def test_timeout_overflow() -> None:
    framer = TimeoutFramer(0.05, max_len=100)
    for i in range(50):
        framer.feed(b"x" * 100, 1.0 + i * 0.001)
    [problem] = framer.idle(2.0)
    assert problem.kind == ProblemKind.OVERFLOW and problem.nbytes == 5000
    framer.feed(b"OK", 3.0)
    assert framer.idle(3.1) == [Frame(b"OK", 3.0)]


# --- wrong baud rate -----------------------------------------------------------------------------------------------


def test_uart_misread_same_baud_is_identity() -> None:
    data = bytes(range(256)) + b"HELLO\r"
    for baud in (1200, 9600, 115200):
        assert uart_misread(data, baud, baud) == data


def test_uart_misread_fast_sender_gives_garbage_the_framer_reports() -> None:
    sent = b"]E04006381333931\r" * 8
    got = uart_misread(sent, 115200, 9600)
    assert got != sent and 0 < len(got) < len(sent)
    framer = TerminatorFramer(CR, stale_after=0.5)
    out = framer.feed(got, 1.0) + framer.idle(2.0)
    assert frames(out) == []
    [problem] = problems(out)
    assert "wrong baud rate or parity?" in problem.message


def test_uart_misread_slow_sender_framing_errors() -> None:
    sent = b"4006381333931\r"
    kept = uart_misread(sent, 9600, 115200)
    assert len(kept) > len(sent) and set(kept) <= {0x00, 0x80, 0xC0, 0xE0, 0xF0, 0xF8, 0xFC, 0xFE, 0xFF}
    assert uart_misread(sent, 9600, 115200, framing_error="nul") == bytes(len(kept))
    assert uart_misread(sent, 9600, 115200, framing_error="drop") == b""
    framer = TerminatorFramer(CR, stale_after=0.5)
    out = framer.feed(kept, 1.0) + framer.idle(2.0)
    assert frames(out) == []
    [problem] = problems(out)
    assert f"{len(kept)} bytes were not text — wrong baud rate or parity?" in problem.message


# --- a device gone away, or a line gone quiet -----------------------------------------------------------------


def test_an_stx_etx_half_frame_is_reported_when_the_device_goes_away_and_forgotten() -> None:
    framer = StxEtxFramer()
    assert framer.reset() is None  # nothing pending: nothing to report
    assert framer.feed(b"\x02HALF", 1.0) == []
    dropped = framer.reset()
    assert dropped is not None and dropped.kind is ProblemKind.INCOMPLETE and "a half frame" in dropped.message
    assert dropped.nbytes == 4
    assert framer.deadline() is None and framer.reset() is None
    assert frames(framer.feed(b"\x02NEXT\x03", 2.0)) == [b"NEXT"]  # the next frame is whole
    framer.feed(b"junk", 3.0)
    assert framer.reset() is None  # noise is forgotten, not reported, when the device goes away
    assert frames(framer.feed(b"\x02OK\x03", 4.0)) == [b"OK"] and framer.deadline() is None


def test_an_stx_etx_partial_frame_on_a_quiet_line_is_dropped_at_its_deadline() -> None:
    framer = StxEtxFramer(stale_after=0.5)
    assert framer.deadline() is None
    framer.feed(b"\x02PART", 10.0)
    assert framer.deadline() == 10.5
    assert framer.idle(10.4) == []
    (dropped,) = framer.idle(10.5)
    assert isinstance(dropped, Problem) and dropped.kind is ProblemKind.INCOMPLETE
    assert "never got its ETX" in dropped.message and dropped.nbytes == 4
    assert framer.deadline() is None and framer.idle(99.0) == []
    # Noise alone on a quiet line is reported once, at the deadline.
    framer.feed(b"\x00\xff", 20.0)
    assert framer.deadline() == 20.5
    (noise,) = framer.idle(20.5)
    assert isinstance(noise, Problem) and noise.kind is ProblemKind.NOISE and noise.nbytes == 2
    assert noise.line_error_bytes == 2
    # Without stale_after nothing is ever dropped for quiet.
    patient = StxEtxFramer(stale_after=None)
    patient.feed(b"\x02PART", 1.0)
    assert patient.deadline() is None and patient.idle(1e9) == []
    assert frames(patient.feed(b"IAL\x03", 2e9)) == [b"PARTIAL"]


def test_a_timeout_framer_half_frame_is_reported_when_the_device_goes_away() -> None:
    framer = TimeoutFramer(0.05)
    assert framer.reset() is None
    framer.feed(b"ABC", 1.0)
    dropped = framer.reset()
    assert dropped is not None and dropped.kind is ProblemKind.INCOMPLETE
    assert dropped.nbytes == 3 and dropped.message == "discarded a half frame of 3 bytes"
    assert framer.deadline() is None and framer.idle(5.0) == []
    big = TimeoutFramer(0.05, max_len=4)
    big.feed(b"123456", 1.0)  # already over: discarded up to the next quiet gap
    lost = big.reset()
    assert lost is not None and lost.nbytes == 6
    assert frames(big.feed(b"OK\r", 2.0) + big.idle(2.1)) == [b"OK"]


def test_a_line_of_exactly_max_len_passes_and_one_more_byte_is_an_overflow() -> None:
    """At the boundary, byte by byte or at once, with a one- or two-byte terminator (which may straddle chunks)."""
    for terminator in (CR, CRLF):
        for chunking in ("whole", "bytes"):
            framer = TerminatorFramer(terminator, max_len=8, stale_after=None)
            stream = b"A" * 8 + terminator + b"B" * 9 + terminator + b"C" * 8 + terminator
            chunks = [stream] if chunking == "whole" else [bytes([b]) for b in stream]
            out = feed_chunks(framer, chunks)
            assert frames(out) == [b"A" * 8, b"C" * 8], (terminator, chunking, out)
            (overflow,) = problems(out)
            assert overflow.kind is ProblemKind.OVERFLOW and overflow.nbytes >= 9, (terminator, chunking)
            assert "max 8" in overflow.message


def test_stx_etx_frames_carry_their_last_bytes_time_and_noise_is_counted_exactly() -> None:
    plain = StxEtxFramer()
    out = plain.feed(b"\x02AB", 1.0) + plain.feed(b"C\x03", 1.1)
    assert [(f.data, f.at) for f in out if isinstance(f, Frame)] == [(b"ABC", 1.1)]
    assert plain.deadline() is None  # nothing pending after a whole frame
    checked = StxEtxFramer(check_lrc=True)
    out = checked.feed(b"\x02OK\x03", 3.0) + checked.feed(bytes([lrc(b"OK")]), 3.1)
    assert [(f.data, f.at) for f in out if isinstance(f, Frame)] == [(b"OK", 3.1)]
    noisy = StxEtxFramer()
    out = noisy.feed(b"abc", 5.0)
    assert out == [] and noisy.deadline() is not None  # noise pending: reported when it ends
    out = noisy.feed(b"\x02X\x03", 5.1)
    (noise,) = problems(out)
    assert noise.kind is ProblemKind.NOISE and noise.nbytes == 3 and frames(out) == [b"X"]
    (early,) = problems(StxEtxFramer().feed(b"\x02HALF\x02FULL\x03"))
    assert "a frame with no ETX before the next STX" in early.message


def test_text_profiles_add_up_and_count_each_kind_of_byte() -> None:
    """The counts behind a problem's line-error figure and its baud-rate hint."""
    assert TextProfile(1, 2, 3, 4, False) + TextProfile(10, 20, 30, 40, True) == TextProfile(11, 22, 33, 44, True)
    assert TextProfile(1, 0, 0, 0, False) + TextProfile(1, 0, 0, 0, False) == TextProfile(2, 0, 0, 0, False)
    # NUL and SOH are controls; 0xFF is not UTF-8 (a stray high byte); NUL and 0xFF are what a wrong
    # baud rate makes.
    assert text_profile(b"\x00\xffA\x01") == TextProfile(4, 2, 3, 2, True)
    assert text_profile(b"\x01") == TextProfile(1, 1, 1, 0, False)
    assert text_profile("é".encode() + b"\x85") == TextProfile(3, 1, 1, 1, False)
    assert TextProfile(8, 0, 0, 2, False).hint() == "; 2 bytes were not text — wrong baud rate or parity?"
    assert TextProfile(9, 0, 0, 2, False).hint() == ""


def test_every_problem_says_how_many_bytes_and_how_many_look_like_line_errors() -> None:
    (garbage,) = TerminatorFramer(CR).feed(b"\x80\x00\xff\xfe\xf0\r")
    assert garbage == Problem(
        ProblemKind.GARBAGE,
        5,
        5,
        "dropped a 5-byte frame that is not text (80 00 ff fe f0); 5 bytes were not text — wrong baud rate or parity?",
    )
    overflow, ok = TerminatorFramer(CR, max_len=4).feed(b"\xff\xff\xffABCDEF\rOK\r")
    assert overflow == Problem(
        ProblemKind.OVERFLOW,
        9,
        3,
        "discarded 9 bytes without a terminator (max 4) — check the scanner's suffix setting;"
        " 3 bytes were not text — wrong baud rate or parity?",
    )
    assert ok == Frame(b"OK", None)
    quiet = TerminatorFramer(CR, stale_after=1.0)
    assert quiet.feed(b"\xff\x00AB", now=0.0) == [] and quiet.deadline() == 1.0
    assert quiet.idle(2.0) == [
        Problem(
            ProblemKind.INCOMPLETE,
            4,
            2,
            "discarded 4 bytes that never got a terminator (ff 00 41 42) — check the scanner's suffix setting;"
            " 2 bytes were not text — wrong baud rate or parity?",
        )
    ]
    assert quiet.deadline() is None
    gone = TerminatorFramer(CR)
    gone.feed(b"\xffAB")
    assert gone.reset() == Problem(ProblemKind.INCOMPLETE, 3, 1, "discarded a half frame of 3 bytes")


def test_a_dropped_frame_shows_its_first_16_bytes() -> None:
    (sixteen,) = TerminatorFramer(CR).feed(b"\x00" * 16 + b"\r")
    assert sixteen.message.startswith("dropped a 16-byte frame that is not text (" + "00 " * 15 + "00);")
    (seventeen,) = TerminatorFramer(CR).feed(b"\x00" * 17 + b"\r")
    assert seventeen.message.startswith("dropped a 17-byte frame that is not text (" + "00 " * 15 + "00 …);")


def test_framer_settings_that_cannot_work_are_refused() -> None:
    with pytest.raises(ValueError, match=r"^max_len must be at least 1$"):
        TerminatorFramer(CR, max_len=0)
    assert TerminatorFramer(CR, max_len=1).feed(b"A\r") == [Frame(b"A", None)]
    with pytest.raises(ValueError, match=r"^terminator must not be empty$"):
        TerminatorFramer(b"")


def test_every_framer_takes_max_len_bytes_and_not_one_more() -> None:
    assert frames(StxEtxFramer(max_len=4).feed(b"\x02ABCD\x03")) == [b"ABCD"]
    (over,) = StxEtxFramer(max_len=4).feed(b"\x02ABCDE\x03")
    assert (over.kind, over.nbytes) == (ProblemKind.OVERFLOW, 5)
    at_most = TimeoutFramer(0.5, max_len=4)
    at_most.feed(b"ABCD", 1.0)
    assert at_most.idle(1.5) == [Frame(b"ABCD", 1.0)]  # a gap of exactly the timeout ends the frame
    one_more = TimeoutFramer(0.5, max_len=4)
    one_more.feed(b"ABCDE", 1.0)
    (burst,) = one_more.idle(1.5)
    assert (burst.kind, burst.nbytes) == (ProblemKind.OVERFLOW, 5)


def test_a_timeout_framer_strips_only_what_it_is_told_to() -> None:
    told = TimeoutFramer(0.5, strip=b"\r\n")
    told.feed(b"AB \r\n", 1.0)
    assert told.idle(1.6) == [Frame(b"AB ", 1.0)]  # the space is data
    nothing = TimeoutFramer(0.5, strip=b"")
    nothing.feed(b"AB\r\n", 1.0)
    assert nothing.idle(1.6) == [Frame(b"AB\r\n", 1.0)]


def test_stx_etx_frame_starts_found_in_order_and_at_a_chunks_last_byte() -> None:
    out = StxEtxFramer().feed(b"\x02A\x02B\x02C\x03")
    assert [p.kind for p in problems(out)] == [ProblemKind.INCOMPLETE, ProblemKind.INCOMPLETE]
    assert frames(out) == [b"C"]
    framer = StxEtxFramer()
    (noise,) = framer.feed(b"noise\x02")
    assert (noise.kind, noise.nbytes) == (ProblemKind.NOISE, 5)
    assert frames(framer.feed(b"DATA\x03")) == [b"DATA"]


@pytest.mark.parametrize(
    ("terminator", "max_len", "chunks", "discarded"),
    [
        (CRLF, 4, [b"ABCDEFGH\r\nOK\r\n"], 8),
        (CRLF, 4, [b"ABCDEFG", b"H\r", b"\nOK\r", b"\n"], 8),
        (b"\r\n\r\n", 3, [b"ABCDEF\r\n", b"\r\nOK\r\n\r\n"], 6),
    ],
)
def test_an_overlong_line_with_a_multi_byte_terminator_is_counted_exactly(
    terminator: bytes, max_len: int, chunks: list[bytes], discarded: int
) -> None:
    """The terminator may straddle chunks: the bytes kept back while it might be arriving are counted
    once, whichever chunk they came in."""
    out = feed_chunks(TerminatorFramer(terminator, max_len=max_len), chunks)
    (over,) = problems(out)
    assert (over.kind, over.nbytes) == (ProblemKind.OVERFLOW, discarded)
    assert frames(out) == [b"OK"]


def test_symbols_of_one_transmission_are_kept_apart() -> None:
    """ISO/IEC 15424, EAN/UPC: modifier 0 a 13-digit packet, 1 and 2 a 2- and 5-digit add-on alone, 3 the
    main and add-on combined, 4 an 8-digit EAN-8. A well-formed identifier inside other data starts the next
    symbol (the platform never gets data with an identifier inside it); a "]" that starts none is data."""
    from clearpoint.scanner_agent.aim import split_symbols

    assert split_symbols(b"4006381333931") == [("", b"4006381333931")]
    assert split_symbols(b"]E04006381333931") == [("]E0", b"4006381333931")]
    assert split_symbols(b"]E04006381333931]E212345") == [("]E3", b"400638133393112345")]
    assert split_symbols(b"]E04006381333931]E112") == [("]E3", b"400638133393112")]
    assert split_symbols(b"]E212345") == [("]E2", b"12345")]  # an add-on read alone
    assert split_symbols(b"]E401234565]E212345") == [("]E4", b"01234565"), ("]E2", b"12345")]  # EAN-8 has none
    assert split_symbols(b"]E04006381333931]C1010400638133393110AB") == [
        ("]E0", b"4006381333931"),
        ("]C1", b"010400638133393110AB"),
    ]
    three = split_symbols(b"]E04006381333931]E04006381333948]E212345")
    assert three == [("]E0", b"4006381333931"), ("]E3", b"400638133394812345")]
    # Not an EAN/UPC packet's fixed length, or not digits: the next identifier still starts the next symbol.
    assert split_symbols(b"]E0400638133393]E212345") == [("]E0", b"400638133393"), ("]E2", b"12345")]
    assert split_symbols(b"]E0400638133393X]E212345") == [("]E0", b"400638133393X"), ("]E2", b"12345")]
    # Two symbols of other symbologies, and three.
    assert split_symbols(b"]Q1see ]E04006381333931") == [("]Q1", b"see "), ("]E0", b"4006381333931")]
    assert split_symbols(b"]C0ABC-123]Q1https://x.test/a]d2010400638133393110AB") == [
        ("]C0", b"ABC-123"),
        ("]Q1", b"https://x.test/a"),
        ("]d2", b"010400638133393110AB"),
    ]
    # A "]" that starts no well-formed identifier is data: not a listed code character, no modifier, at the end.
    assert split_symbols(b"]Q1a]J1b]E c]") == [("]Q1", b"a]J1b]E c]")]
    assert split_symbols(b"]E04006381333931]") == [("]E0", b"4006381333931]")]


@given(
    st.lists(
        st.tuples(st.sampled_from(["]C0", "]Q1", "]d2", "]A0", "]L2"]), st.binary(min_size=1, max_size=40)),
        min_size=1,
        max_size=4,
    )
)
def test_split_symbols_gives_back_what_was_joined(symbols: list[tuple[str, bytes]]) -> None:
    """Symbols of variable-length symbologies, joined as a scanner sends them, come apart as they were, as long
    as no data holds a well-formed identifier (which would make it two symbols)."""
    from clearpoint.scanner_agent.aim import split_aim, split_symbols

    def holds_identifier(data: bytes) -> bool:
        return any(split_aim(data[i:])[0] for i in range(len(data)))

    if any(holds_identifier(data) for _, data in symbols):
        return
    joined = b"".join(ident.encode() + data for ident, data in symbols)
    assert split_symbols(joined) == symbols


# -- a frame cut when the agent stopped: pending, and resync ---------------------------------------------------------


def _datas(outputs: list[Frame | Problem]) -> list[bytes]:
    return [o.data for o in outputs if isinstance(o, Frame)]


def _problems(outputs: list[Frame | Problem]) -> list[str]:
    return [o.message for o in outputs if isinstance(o, Problem)]


def test_pending_says_whether_a_stop_now_would_cut_a_frame() -> None:
    term = TerminatorFramer(b"\r")
    assert not term.pending
    term.feed(b"ABC\rDE", 0.0)
    assert term.pending
    term.feed(b"F\r", 0.01)
    assert not term.pending
    stx = StxEtxFramer(check_lrc=True)
    stx.feed(b"\x02AB", 0.0)
    assert stx.pending
    stx.feed(b"\x03", 0.01)
    assert stx.pending  # the LRC byte is still to come
    stx.feed(bytes([lrc(b"AB")]), 0.02)
    assert not stx.pending


@given(head=st.binary(min_size=1, max_size=30).filter(lambda b: b"\r" not in b), cut=st.integers(0, 29))
def test_a_resynced_terminator_framer_never_yields_the_tail(head: bytes, cut: int) -> None:
    """Whatever the cut frame held and wherever it was cut, its tail is a problem and the next frame is whole."""
    tail = head[min(cut, len(head) - 1) :]
    framer = TerminatorFramer(b"\r", stale_after=None)
    framer.resync()
    out = framer.feed(tail + b"\rNEXT\r", 0.0)
    assert _datas(out) == [b"NEXT"]
    assert _problems(out) == [
        f"discarded {len(tail)} bytes up to the first frame boundary: the end of a frame cut "
        "when the agent last stopped"
    ]


def test_a_resynced_stx_etx_framer_reports_the_tail_not_noise() -> None:
    framer = StxEtxFramer()
    framer.resync()
    out = framer.feed(b"TAIL\x03\x04\x02WHOLE\x03\x04", 0.0)
    assert _datas(out) == [b"WHOLE"]
    assert _problems(out) == [
        "discarded 6 bytes up to the first frame boundary: the end of a frame cut when the agent last stopped"
    ]


def test_a_resynced_timeout_framer_drops_the_held_burst_then_reads() -> None:
    framer = TimeoutFramer(0.05)
    framer.resync()
    assert framer.feed(b"ONETWOTHR", 0.0) == []
    assert "cannot be told apart" in _problems(framer.idle(0.1))[0]
    framer.feed(b"LIVE", 0.2)
    assert _datas(framer.idle(0.3)) == [b"LIVE"]


def test_reset_forgets_a_resync() -> None:
    framer = TerminatorFramer(b"\r")
    framer.resync()
    assert framer.reset() is None
    assert _datas(framer.feed(b"WHOLE\r", 0.0)) == [b"WHOLE"]
