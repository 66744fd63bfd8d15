"""Training control (issue 11): validation_split, early stopping with the best weights restored,
learning-rate schedules (formulas, callables, plateau), clipnorm, callbacks, max_time and the
progress display, each checked against an independent computation, and each with partial_fit,
warm_start + resume_optimizer, 8-bit input and n_threads. csrc/tests/test_training_control.cpp
checks the engine's monitor (a scripted loss sequence) and hold-out draw directly."""

import math
import os
import pty
import select
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import smooth_data

from fastae import Autoencoder, _progress

try:
    import fcntl
    import termios
except ImportError:  # not POSIX
    fcntl = termios = None

KW = dict(hidden_layer_sizes=(3,), batch_size=8, random_state=0, n_threads=1)


@pytest.fixture(scope="module")
def X():
    return smooth_data(40, 6, seed=3)


def same_weights(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    return len(wa) == len(wb) and all(np.array_equal(Wa, Wb) and np.array_equal(ba, bb)
                                      for (Wa, ba), (Wb, bb) in zip(wa, wb))


def monitored(ae):
    """The loss early stopping watches, per epoch: val_loss when validating, else loss."""
    h = ae.history_
    return list(h["val_loss"]) if "val_loss" in h else list(h["loss"])


def replay_best(losses, min_delta):
    """The best epoch (1-based) and loss by the documented rule: improve by more than min_delta."""
    best_epoch, best = None, math.inf
    for e, loss in enumerate(losses, 1):
        if loss < best - min_delta:
            best_epoch, best = e, loss
    return best_epoch, best


# ---- early stopping ----------------------------------------------------------------------------

@pytest.mark.parametrize("validation", ["none", "validation_split", "validation_data"])
def test_early_stopping_restores_the_exact_weights_of_the_best_epoch(X, validation):
    kw = dict(KW, learning_rate=0.2, epochs=300, min_delta=1e-3, patience=3)
    fit_kw, extra = {}, {}
    if validation == "validation_split":
        extra["validation_split"] = 0.25
    elif validation == "validation_data":
        fit_kw["validation_data"] = smooth_data(12, 6, seed=9)
    stopped = Autoencoder(early_stopping=True, **kw, **extra).fit(X, **fit_kw)
    n = len(stopped.history_["loss"])
    assert stopped.stop_reason_ == "early_stopping"
    assert ("val_loss" in stopped.history_) == (validation != "none")
    best_epoch, best_loss = replay_best(monitored(stopped), 1e-3)
    assert (stopped.best_epoch_, stopped.best_loss_) == (best_epoch, best_loss)
    assert n == best_epoch + 3 < 300  # stopped `patience` epochs after the best one

    # The same seed stopped by hand at the best epoch: the same weights, bit for bit.
    reference = Autoencoder(**{**kw, **extra, "epochs": best_epoch}).fit(X, **fit_kw)
    assert reference.stop_reason_ == "completed"
    assert reference.history_["loss"] == stopped.history_["loss"][:best_epoch]
    assert same_weights(stopped, reference)
    full = Autoencoder(**{**kw, **extra, "epochs": n}).fit(X, **fit_kw)
    assert not np.array_equal(stopped.predict(X), full.predict(X))

    # restore_best_weights=False ends with the last epoch's weights.
    last = Autoencoder(early_stopping=True, restore_best_weights=False, **kw, **extra).fit(X, **fit_kw)
    assert last.stop_reason_ == "early_stopping" and len(last.history_["loss"]) == n
    assert same_weights(last, Autoencoder(**{**kw, **extra, "epochs": n}).fit(X, **fit_kw))
    assert not same_weights(last, stopped)


def test_without_early_stopping_every_epoch_runs_and_best_epoch_is_still_reported(X):
    ae = Autoencoder(epochs=12, learning_rate=0.2, min_delta=1e-3, **KW).fit(X)
    assert ae.stop_reason_ == "completed" and len(ae.history_["loss"]) == 12
    assert (ae.best_epoch_, ae.best_loss_) == replay_best(ae.history_["loss"], 1e-3)


# ---- learning-rate schedules -------------------------------------------------------------------

def formula(schedule, lr, e, rate, steps, lr_min):
    """vocabulary.h's formulas (and lr_schedule's docstring), written out independently."""
    if schedule == "step":
        value = lr * rate ** (e // steps)
    elif schedule == "exponential":
        value = lr * rate ** (e / steps)
    else:  # cosine
        value = lr_min + (lr - lr_min) * (1 + math.cos(math.pi * min(e, steps) / steps)) / 2
    return max(value, lr_min)


@pytest.mark.parametrize("schedule", ["step", "exponential", "cosine"])
@pytest.mark.parametrize("lr_min", [0.0, 0.006])
def test_schedules_give_the_documented_rates(X, schedule, lr_min):
    ae = Autoencoder(epochs=12, learning_rate=0.02, lr_schedule=schedule, lr_decay_rate=0.5, lr_decay_steps=4,
                     lr_min=lr_min, **KW).fit(X)
    want = [formula(schedule, 0.02, e, 0.5, 4, lr_min) for e in range(12)]
    assert ae.history_["lr"] == pytest.approx(want, rel=1e-12, abs=0)
    assert min(ae.history_["lr"]) >= lr_min
    if lr_min > 0:
        assert ae.history_["lr"][-1] == lr_min  # the floor is reached and held
    # partial_fit continues the epoch index: six calls give the first six rates.
    pf = Autoencoder(learning_rate=0.02, lr_schedule=schedule, lr_decay_rate=0.5, lr_decay_steps=4, lr_min=lr_min,
                     **KW)
    for _ in range(6):
        pf.partial_fit(X)
    assert pf.history_["lr"] == pytest.approx(want[:6], rel=1e-12, abs=0)


def plateau_rates(losses, lr, rate, patience, min_delta, lr_min):
    """ReduceLROnPlateau as documented: after `patience` epochs without an improvement (by more
    than min_delta) since the last improvement or cut, the next epoch's rate is rate * lr."""
    rates, best, since = [], math.inf, 0
    for loss in losses:
        rates.append(lr)
        if loss < best - min_delta:
            best, since = loss, 0
        else:
            since += 1
            if since >= patience:
                since, lr = 0, max(lr * rate, lr_min)
    return rates


def test_plateau_cuts_after_lr_patience_epochs_without_improvement(X):
    kw = dict(KW, learning_rate=0.1, lr_schedule="plateau", lr_patience=2, lr_decay_rate=0.5, min_delta=0.01,
              lr_min=0.02)
    ae = Autoencoder(epochs=15, **kw).fit(X)
    rates = ae.history_["lr"]
    assert rates == plateau_rates(ae.history_["loss"], 0.1, 0.5, 2, 0.01, 0.02)
    assert rates[0] == 0.1 and rates[-1] == 0.02 and len(set(rates)) >= 3  # several cuts, then the floor


def test_plateau_and_best_epoch_continue_across_partial_fit(X):
    """Without shuffles, n partial_fit calls train as one fit of n epochs would: the plateau
    rule and the best epoch carry over from one call to the next."""
    kw = dict(KW, shuffle=False, learning_rate=0.1, lr_schedule="plateau", lr_patience=2, lr_decay_rate=0.5,
              min_delta=0.01)
    whole = Autoencoder(epochs=10, **kw).fit(X)
    pf = Autoencoder(**kw)
    for _ in range(10):
        pf.partial_fit(X)
    assert len(set(whole.history_["lr"])) >= 3  # the rule did cut
    assert pf.history_["lr"] == whole.history_["lr"]
    assert pf.history_["loss"] == whole.history_["loss"]
    assert (pf.best_epoch_, pf.best_loss_) == (whole.best_epoch_, whole.best_loss_)
    assert same_weights(pf, whole)


def test_callable_schedule_is_called_once_per_epoch_and_its_rates_are_used(X):
    calls = []

    def schedule(epoch, lr):
        calls.append((epoch, lr))
        return lr * 0.5 if epoch % 2 else lr + 0.001

    ae = Autoencoder(epochs=4, learning_rate=0.01, lr_schedule=schedule, **KW).fit(X)
    rates = [0.011, 0.0055, 0.0065, 0.00325]
    assert [e for e, _ in calls] == [0, 1, 2, 3]
    assert [lr for _, lr in calls] == pytest.approx([0.01, *rates[:3]], rel=1e-15)
    assert ae.history_["lr"] == pytest.approx(rates, rel=1e-15)
    # partial_fit: the epoch index goes on from 4 and the rate in force is the last one used.
    calls.clear()
    ae.partial_fit(X)
    ae.partial_fit(X)
    assert calls == [(4, ae.history_["lr"][3]), (5, ae.history_["lr"][4])]
    assert ae.history_["lr"][4:] == pytest.approx([rates[3] + 0.001, (rates[3] + 0.001) * 0.5], rel=1e-15)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_the_optimizer_uses_the_scheduled_rates(X, optimizer):
    """A run with a schedule equals a run of one-epoch fits with the rate set by hand, the
    optimizer state resumed between them (Adam's step count and moments continue)."""
    kw = dict(KW, shuffle=False, optimizer=optimizer)
    scheduled = Autoencoder(epochs=5, learning_rate=0.05, lr_schedule="cosine", lr_decay_steps=4, lr_min=0.001,
                            **kw).fit(X)
    rates = scheduled.history_["lr"]
    assert len(set(rates)) == 5
    by_hand = Autoencoder(epochs=1, learning_rate=rates[0], **kw).fit(X)
    for r in rates[1:]:
        by_hand.set_params(learning_rate=r, warm_start=True).fit(X, resume_optimizer=True)
    assert by_hand._model.optimizer_state()["steps"] == scheduled._model.optimizer_state()["steps"] == 25
    assert same_weights(scheduled, by_hand)
    constant = Autoencoder(epochs=5, learning_rate=0.05, **kw).fit(X)
    assert not same_weights(scheduled, constant)


# ---- validation_split --------------------------------------------------------------------------

def held_out_rows(X, random_state, split=0.25):
    """Perturbs one row at a time: a row trained on changes the training loss; a held-out row
    leaves it bit-identical and changes only val_loss."""
    kw = dict(KW, random_state=random_state, epochs=1, validation_split=split)
    base = Autoencoder(**kw).fit(X).history_
    held = []
    for i in range(len(X)):
        Xp = X.copy()
        Xp[i] = 1.0 - Xp[i]
        h = Autoencoder(**kw).fit(Xp).history_
        if h["loss"] == base["loss"]:
            assert h["val_loss"] != base["val_loss"]
            held.append(i)
        else:
            assert h["loss"] != base["loss"]
    return held


def test_validation_split_holds_out_a_seeded_random_subset_and_never_trains_on_it(X):
    n = len(X)
    held = held_out_rows(X, 0)
    assert len(held) == n - int(n * (1 - 0.25)) == 10
    assert held != list(range(n - 10, n))  # not Keras's last rows
    assert held_out_rows(X, 0) == held  # the same random_state, the same rows
    assert held_out_rows(X, 1) != held  # another random_state, other rows
    # val_loss is the loss of those rows after the epoch.
    ae = Autoencoder(epochs=2, validation_split=0.25, **KW).fit(X)
    assert ae.history_["val_loss"][-1] == pytest.approx(-ae.score(X[held]), rel=1e-5)
    # An odd split: n - int(n * (1 - split)) rows (int(40 * 0.9) = 36 train, 4 held out).
    assert len(held_out_rows(X[:20], 0, split=0.1)) == 20 - int(20 * 0.9)


def test_partial_fit_holds_out_the_same_rows_every_call(X):
    def held_in_second_call(Xp):
        ae = Autoencoder(validation_split=0.25, **KW)
        ae.partial_fit(Xp)
        ae.partial_fit(Xp)
        return ae.history_

    base = held_in_second_call(X)
    held = []
    for i in range(len(X)):
        Xp = X.copy()
        Xp[i] = 1.0 - Xp[i]
        if held_in_second_call(Xp)["loss"] == base["loss"]:  # neither call trained on row i
            held.append(i)
    assert held == held_out_rows(X, 0)


def test_validation_split_too_large_for_the_data_is_a_value_error(X):
    with pytest.raises(ValueError, match="validation_split"):
        Autoencoder(validation_split=0.5, **KW).fit(X[:1])


# ---- clipnorm ----------------------------------------------------------------------------------

def test_clipnorm_scales_the_gradient_to_the_norm(X):
    """One full-batch SGD step from known weights: new = old - lr * g * min(1, c / |g|)."""
    kw = dict(KW, optimizer="sgd", momentum=0.0, nesterov=False, learning_rate=0.5, batch_size=64, shuffle=False,
              epochs=1)
    start = Autoencoder(**kw).fit(X)
    old = start._model.get_params().astype(np.float64)
    _, g = start._model.loss_and_gradient(X, None)
    g = g.astype(np.float64)
    norm = np.linalg.norm(g)
    for c in (norm / 4, norm * 2):
        ae = Autoencoder(warm_start=True, clipnorm=c, **kw)
        ae.set_weights(start.get_weights())
        new = ae.fit(X)._model.get_params().astype(np.float64)
        np.testing.assert_allclose(new, old - 0.5 * g * min(1.0, c / norm), rtol=0, atol=1e-6)
        unclipped = old - 0.5 * g
        assert (np.abs(new - unclipped).max() > 1e-3) == (c < norm)


# ---- callbacks ---------------------------------------------------------------------------------

def test_callbacks_get_the_epoch_and_logs_and_false_stops(X):
    seen, also = [], []

    def first(epoch, logs):
        seen.append((epoch, dict(logs)))
        return epoch != 2  # False after the third epoch

    ae = Autoencoder(epochs=10, validation_split=0.25, lr_schedule="step", lr_decay_steps=1, lr_decay_rate=0.5,
                     callbacks=[first, lambda e, logs: also.append(e)], **KW).fit(X)
    assert ae.stop_reason_ == "callback"
    assert len(ae.history_["loss"]) == 3 and ae.n_iter_ == 3
    assert [e for e, _ in seen] == also == [0, 1, 2]  # every callback runs, with 0-based epochs
    for e, logs in seen:
        assert {"loss", "val_loss", "lr", "seconds"} <= set(logs)
        assert logs["loss"] == ae.history_["loss"][e] and logs["val_loss"] == ae.history_["val_loss"][e]
        assert logs["lr"] == ae.history_["lr"][e] == 0.001 * 0.5 ** e
        assert logs["seconds"] >= 0
    # Without validation there is no val_loss; returning None (or True) goes on.
    keys = []
    Autoencoder(epochs=2, callbacks=[lambda e, logs: keys.append(set(logs))], **KW).fit(X)
    assert keys and all("val_loss" not in k and {"loss", "lr", "seconds"} <= k for k in keys)


@pytest.mark.parametrize("exc", [RuntimeError, ValueError, KeyError])
def test_a_callback_that_raises_stops_with_its_exception_keeping_the_last_epoch(X, exc):
    def boom(epoch, logs):
        if epoch == 2:
            raise exc("from the callback")

    # early stopping with restore_best_weights on: still the last epoch's weights, not the best's
    kw = dict(KW, learning_rate=0.2, early_stopping=True, patience=50, min_delta=0.5)
    ae = Autoencoder(epochs=10, callbacks=[boom], **kw)
    with pytest.raises(exc, match="from the callback"):
        ae.fit(X)
    assert len(ae.history_["loss"]) == 3 and ae.n_iter_ == 3
    assert ae.stop_reason_ == "callback"
    assert ae.best_epoch_ == 1  # min_delta 0.5: later epochs do not count as improvements
    assert same_weights(ae, Autoencoder(**{**kw, "epochs": 3, "early_stopping": False}).fit(X))
    assert not same_weights(ae, Autoencoder(**{**kw, "epochs": 1, "early_stopping": False}).fit(X))
    assert ae._model.optimizer_state()["steps"] == 15
    ae.predict(X)  # fitted and usable


def test_a_schedule_that_raises_or_returns_nan(X):
    def raises(epoch, lr):
        if epoch == 2:
            raise ZeroDivisionError("schedule")
        return lr

    ae = Autoencoder(epochs=5, lr_schedule=raises, **KW)
    with pytest.raises(ZeroDivisionError, match="schedule"):
        ae.fit(X)
    assert len(ae.history_["loss"]) == 2 and ae.stop_reason_ == "callback"
    assert same_weights(ae, Autoencoder(epochs=2, **KW).fit(X))
    # A user error that is a ValueError is the user's too: the epochs done are kept.
    def refuses(epoch, lr):
        if epoch == 1:
            raise ValueError("mine")
        return lr

    ae = Autoencoder(epochs=5, lr_schedule=refuses, **KW)
    with pytest.raises(ValueError, match="mine"):
        ae.fit(X)
    assert len(ae.history_["loss"]) == 1
    # A rate that is not a finite number >= 0 is a ValueError naming the schedule.
    for bad in (float("nan"), -0.1, float("inf")):
        with pytest.raises(ValueError, match="learning-rate function returned"):
            Autoencoder(epochs=3, lr_schedule=lambda e, lr, bad=bad: bad if e == 1 else lr, **KW).fit(X)


# ---- max_time ----------------------------------------------------------------------------------

def test_max_time_stops_after_the_first_step(X):
    ae = Autoencoder(epochs=50, max_time=1e-9, **KW).fit(X)
    assert ae.stop_reason_ == "max_time"
    assert len(ae.history_["loss"]) == 1 and len(ae.history_["lr"]) == 1
    assert ae._model.optimizer_state()["steps"] == 1  # 5 steps an epoch; stopped after the first
    ae.partial_fit(X)  # and with partial_fit
    assert len(ae.history_["loss"]) == 2 and ae._model.optimizer_state()["steps"] == 2
    roomy = Autoencoder(epochs=3, max_time=1e6, **KW).fit(X)
    assert roomy.stop_reason_ == "completed" and len(roomy.history_["loss"]) == 3


# ---- together: partial_fit, warm start, 8-bit input, threads, seeds ----------------------------

ALL_ON = dict(validation_split=0.25, early_stopping=True, patience=3, min_delta=1e-4, lr_schedule="cosine",
              lr_decay_steps=6, lr_min=1e-4, clipnorm=0.05, max_time=1e6, learning_rate=0.05, epochs=40)


def run_all_on(X, **kw):
    logs = []
    ae = Autoencoder(**{**KW, **ALL_ON, **kw}, callbacks=[lambda e, l: logs.append(l["loss"])]).fit(X)
    return ae, logs


def fingerprint(ae):
    h = {k: v for k, v in ae.history_.items() if k != "seconds"}
    return [a.tobytes() for pair in ae.get_weights() for a in pair], h, ae.best_epoch_, ae.stop_reason_


@pytest.mark.parametrize("n_threads", [1, 2])
def test_a_seed_reproduces_a_run_with_every_control_on(X, n_threads):
    a, logs_a = run_all_on(X, n_threads=n_threads)
    b, logs_b = run_all_on(X, n_threads=n_threads)
    assert fingerprint(a) == fingerprint(b) and logs_a == logs_b
    assert a.stop_reason_ in ("early_stopping", "completed")
    assert run_all_on(X, n_threads=n_threads, random_state=1)[0].history_["loss"] != a.history_["loss"]


def test_threads_change_only_rounding_with_every_control_on(X):
    one, _ = run_all_on(X, n_threads=1, early_stopping=False, epochs=8)
    two, _ = run_all_on(X, n_threads=2, early_stopping=False, epochs=8)
    assert one.history_["lr"] == two.history_["lr"]
    np.testing.assert_allclose(one.history_["loss"], two.history_["loss"], rtol=1e-4)


def test_8_bit_input_with_every_control_on_equals_the_float_run(X):
    X8 = np.round(X * 255).astype(np.uint8)
    kw = dict(input_scale=1 / 255)
    on_bytes, _ = run_all_on(X8, **kw)
    on_floats, _ = run_all_on(X8.astype(np.float32), **kw)  # scaled once by the estimator
    assert fingerprint(on_bytes) == fingerprint(on_floats)
    assert len(on_bytes.history_["val_loss"]) == len(on_bytes.history_["loss"])


def test_warm_start_and_resume_optimizer_with_controls(X):
    ae, _ = run_all_on(X, early_stopping=False, epochs=3)
    steps = ae._model.optimizer_state()["steps"]
    ae.set_params(warm_start=True, epochs=4, lr_schedule="step", lr_decay_steps=2, lr_decay_rate=0.5)
    ae.fit(X, resume_optimizer=True)
    # A new fit: the schedule starts again at epoch 0; the optimizer continues its steps.
    assert ae.history_["lr"] == pytest.approx([0.05, 0.05, 0.025, 0.025], rel=1e-15)
    assert ae._model.optimizer_state()["steps"] == steps + 4 * 4  # 30 training rows, batch 8


def test_partial_fit_with_every_control_on(X):
    calls = []
    ae = Autoencoder(**{**KW, **ALL_ON}, callbacks=[lambda e, logs: calls.append(e)])
    for _ in range(4):
        ae.partial_fit(X)
    assert calls == [0, 1, 2, 3] and ae.n_iter_ == 4
    assert ae.history_["lr"] == pytest.approx([formula("cosine", 0.05, e, 0.1, 6, 1e-4) for e in range(4)],
                                              rel=1e-12)
    assert len(ae.history_["val_loss"]) == 4 and all(map(math.isfinite, ae.history_["val_loss"]))
    assert (ae.best_epoch_, ae.best_loss_) == replay_best(ae.history_["val_loss"], 1e-4)


# ---- bad values --------------------------------------------------------------------------------

@pytest.mark.parametrize("name,value", [
    ("validation_split", 1.0), ("validation_split", -0.1), ("patience", 0), ("lr_patience", 0),
    ("lr_schedule", "linear"), ("lr_schedule", 3), ("lr_decay_rate", 0), ("lr_decay_rate", 1.5),
    ("lr_decay_steps", 0), ("lr_min", -1.0), ("min_delta", -1.0), ("clipnorm", 0), ("clipnorm", -1),
    ("callbacks", [1]), ("callbacks", print), ("max_time", 0), ("max_time", -5.0),
    ("early_stopping", "yes"), ("restore_best_weights", 1)])
def test_bad_values_raise_value_error_naming_the_parameter_before_training(X, name, value):
    called = []
    ae = Autoencoder(epochs=2, **KW).set_params(callbacks=[lambda e, logs: called.append(e)])
    ae.set_params(**{name: value})
    with pytest.raises(ValueError, match=name):
        ae.fit(X)
    assert not called and not hasattr(ae, "history_")  # nothing trained, nothing kept


# ---- the progress display ----------------------------------------------------------------------
# One child process per kind of output (a pseudo-terminal, a pipe) trains once per section,
# announcing each with a line "<<name>>"; on a terminal it sets its own width first. It reports on
# stderr whether each shown run gave the weights and history of a run with verbose=0.

CHILD = textwrap.dedent("""
    import struct, sys
    import numpy as np
    from fastae import Autoencoder
    X = np.random.default_rng(0).uniform(0.1, 0.9, size=(200, 8)).astype(np.float32)
    kw = dict(hidden_layer_sizes=(4,), epochs=3, batch_size=16, random_state=0, n_threads=1,
              validation_split=0.2, lr_schedule="step", lr_decay_steps=1)
    quiet = Autoencoder(verbose=0, **kw).fit(X)
    for section in sys.argv[1:]:
        name, verbose, columns, bar = section.split(":")
        if columns != "-":
            import fcntl, termios
            fcntl.ioctl(sys.stdout.fileno(), termios.TIOCSWINSZ, struct.pack("HHHH", 24, int(columns), 0, 0))
        if bar == "plain":
            sys.modules["tqdm"] = None  # import tqdm fails: the plain fallback
        else:
            sys.modules.pop("tqdm", None)
        print(f"<<{name}>>", flush=True)
        shown = Autoencoder(verbose=int(verbose), **kw).fit(X)
        sys.stdout.flush()
        same = all(np.array_equal(a, b) for p, q in zip(shown.get_weights(), quiet.get_weights()) for a, b in zip(p, q))
        same = same and shown.history_["loss"] == quiet.history_["loss"]
        sys.stderr.write(f"{name} {'SAME' if same else 'DIFFERENT'}\\n")
""")


def run_child(sections, terminal):
    """Runs CHILD with stdout on a pseudo-terminal or a pipe; returns ({section: its output},
    stderr text)."""
    args = [sys.executable, "-c", CHILD, *sections]
    if not terminal:
        proc = subprocess.run(args, capture_output=True, timeout=120)
        out, err = proc.stdout, proc.stderr
    else:
        master, slave = pty.openpty()
        proc = subprocess.Popen(args, stdout=slave, stderr=subprocess.PIPE)
        os.close(slave)
        out = b""
        while True:
            ready, _, _ = select.select([master], [], [], 120)
            if not ready:
                proc.kill()
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        os.close(master)
        err = proc.stderr.read()
        proc.wait(timeout=120)
    text, parts = out.decode(), {}
    for section in sections:
        name = section.split(":")[0]
        start = text.index(f"<<{name}>>") + len(name) + 4
        end = text.find("<<", start)
        end = len(text) if end < 0 else end
        parts[name] = text[start:end].lstrip("\r\n")
    return parts, err.decode()


@pytest.fixture(scope="module")
def on_terminal():
    if fcntl is None:
        pytest.skip("needs a POSIX pseudo-terminal")
    return run_child(["plain:1:120:plain", "narrow:1:60:plain", "tqdm:1:150:tqdm", "lines:2:100:plain"], True)


@pytest.fixture(scope="module")
def on_pipe():
    return run_child(["bar:1:-:plain", "lines:2:-:plain"], False)


def test_the_display_never_changes_results(on_terminal, on_pipe):
    for name in ("plain", "narrow", "tqdm", "lines"):
        assert f"{name} SAME" in on_terminal[1], on_terminal[1]
    for name in ("bar", "lines"):
        assert f"{name} SAME" in on_pipe[1], on_pipe[1]


def test_verbose_1_on_a_terminal_draws_a_plain_bar_without_tqdm(on_terminal):
    out = on_terminal[0]["plain"]
    assert "\r" in out.replace("\r\n", "\n")
    bars = [s for s in out.replace("\r\n", "\n").split("\r") if "samples/s" in s]
    for epoch in (1, 2, 3):  # at least one bar per epoch: steps done, loss, samples/s, ETA
        assert any(b.startswith(f"epoch {epoch}/3 [") and "10/10" in b and "loss" in b and "ETA" in b
                   for b in bars), bars
        assert f"epoch {epoch}/3  loss " in out
    lines = [line for line in out.replace("\r\n", "\n").split("\n") if line.strip()]
    assert len(lines) == 3  # redrawn in place, then replaced by the epoch's line: one line an epoch
    assert all("val_loss" in line.rsplit("\r", 1)[-1] for line in lines)


def test_the_plain_bar_fits_a_narrow_terminal(on_terminal):
    out = on_terminal[0]["narrow"]
    drawn = [s.split("\x1b[K")[0] for s in out.replace("\r\n", "\n").split("\r") if "samples/s" in s]
    assert drawn and all(len(s) < 60 for s in drawn), [len(s) for s in drawn]


def test_verbose_1_on_a_terminal_draws_tqdms_bar_when_installed(on_terminal):
    pytest.importorskip("tqdm")
    out = on_terminal[0]["tqdm"]
    assert "\r" in out and "10/10" in out and "step/s" in out and "samples/s" in out
    for epoch in (1, 2, 3):
        assert f"epoch {epoch}/3: 100%" in out
    assert "<00:00" in out  # tqdm's remaining time


def test_verbose_1_on_a_pipe_writes_one_line_per_epoch(on_pipe):
    out = on_pipe[0]["bar"]
    assert "\r" not in out and "\x1b" not in out
    lines = out.splitlines()
    assert len(lines) == 3
    for epoch, line in enumerate(lines, 1):
        assert line.startswith(f"epoch {epoch}/3  loss ") and "val_loss" in line and " lr " in line


def test_an_exception_in_the_progress_display_stops_training_at_once(X, monkeypatch):
    """The display runs Python code between steps, where Python may raise a Ctrl-C's
    KeyboardInterrupt: training must stop right there, as when it is caught between steps."""
    calls = []

    def progress(self, p):
        calls.append(p["step"])
        raise KeyboardInterrupt

    monkeypatch.setattr(_progress.EpochLines, "progress", progress)  # verbose=1 off a terminal
    ae = Autoencoder(epochs=5, verbose=1, **KW)
    with pytest.raises(KeyboardInterrupt):
        ae.fit(X)
    assert len(calls) == 1
    assert ae.stop_reason_ == "interrupted" and ae.history_["loss"] == []
    assert ae._model.optimizer_state()["steps"] == calls[0]  # the steps done up to that report


@pytest.mark.parametrize("where", ["pipe", "terminal"])
def test_verbose_2_writes_one_line_per_epoch(on_terminal, on_pipe, where):
    out = (on_pipe if where == "pipe" else on_terminal)[0]["lines"].replace("\r\n", "\n")
    assert "\r" not in out and "\x1b" not in out
    lines = out.splitlines()
    assert [line.split("  ")[0] for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert "lr 0.001" in lines[0] and "lr 0.0001" in lines[1]


def test_early_stopping_over_partial_fit_calls_stops_and_restores_the_best_epoch():
    """Each partial_fit call is one epoch: once `patience` calls have not improved the monitored
    loss, further calls train no more (stop_reason_ "early_stopping") and, with
    restore_best_weights, the model holds the best epoch's exact weights (those of the same
    partial_fit sequence stopped there)."""
    from conftest import smooth_data

    X = smooth_data(200, 12, seed=2)
    kw = dict(hidden_layer_sizes=(6,), loss="bce", epochs=1, random_state=0, n_threads=1, patience=2,
              learning_rate=0.5, validation_split=0.2)
    stopped = Autoencoder(early_stopping=True, **kw)
    for _ in range(60):
        stopped.partial_fit(X)
        if stopped.stop_reason_ == "early_stopping":
            break
    assert stopped.stop_reason_ == "early_stopping"
    n = len(stopped.history_["loss"])
    assert n - stopped.best_epoch_ == 2 and n < 60
    plain = Autoencoder(**kw)
    for _ in range(stopped.best_epoch_):
        plain.partial_fit(X)
    assert np.array_equal(stopped._model.get_params(), plain._model.get_params())
    stopped.partial_fit(X)  # a further call trains no more
    assert len(stopped.history_["loss"]) == n and stopped.stop_reason_ == "early_stopping"
