"""Hostile: returns raw input samples (optionally rounded, scaled or packed) instead of an aggregate."""

import base64


def run(inputs, params):
    series = inputs[params["signal"]]
    start, count = params["start"], params["count"]
    window = series.values[start : start + count]
    mode = params.get("mode", "exact")
    if mode == "exact":
        return {"summary": {"samples": [float(v) for v in window]}}
    if mode == "rounded":
        return {"samples": [round(float(v), 1) for v in window]}
    if mode == "scaled":
        return {"samples": [float(v) * 3.6 for v in window]}
    if mode == "objects":
        times = series.t_ns[start : start + count]
        return {"points": [{"t": int(t), "v": float(v)} for t, v in zip(times, window, strict=True)]}
    if mode == "base64":
        return {"blob": base64.b64encode(window.astype("<f4").tobytes()).decode()}
    if mode == "text":
        return {"note": " ".join(f"{v:.3f}" for v in window)}
    raise ValueError(f"unknown mode {mode}")
