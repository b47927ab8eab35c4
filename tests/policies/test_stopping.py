"""Stopping at the first confirmed policy: screening, confirmation, the PID baseline's crash rate as the bar."""

from __future__ import annotations

from policies.stopping import ConfirmedStop, StopCfg
from policies.train import IterationStats
from sim.quadrotor.config import QuadrotorTaskCfg


def _stats(it: int, level: float = 1.0) -> IterationStats:
    return IterationStats(it, 0.1 * (it + 1), 1e5, 0.5, 10.0, 5.0, 0.0, curriculum_level=level)


class Scripted(ConfirmedStop):
    """Evaluations answered from a script: (success, crash) per screening / confirmation seed."""

    def __init__(self, screen, confirm, pid_crash, **cfg):
        super().__init__("quadrotor-hover", QuadrotorTaskCfg(), StopCfg(**cfg))
        self.screen, self.confirm, self.flown = list(screen), list(confirm), []
        self.baseline = {"success_rate": 0.3, "crash_rate": pid_crash}

    def evaluate(self, runner, episodes, seed):
        self.flown.append((episodes, seed))
        success, crash = (self.screen if episodes == self.cfg.screen_episodes else self.confirm).pop(0)
        return {"success_rate": success, "crash_rate": crash, "position_rmse_m": 0.02}


def test_it_stops_at_the_first_policy_whose_confirmation_meets_success_and_the_baseline_crash_rate():
    stop = Scripted(
        screen=[(0.90, 0.02), (0.96, 0.01), (0.95, 0.01), (0.97, 0.0)],
        confirm=[(0.94, 0.003), (0.97, 0.004), (0.96, 0.002)],
        pid_crash=0.003,
    )
    decisions = [stop(_stats(it), None) for it in range(20)]
    # evaluations after iterations 4, 9, 14, 19; the confirmations of 9 (success 94 %) and 14 (crash 0.4 % > PID
    # 0.3 %) fail, 19's passes (crash 0.2 %)
    assert decisions == [False] * 19 + [True]
    assert [ev.iteration for ev in stop.history] == [4, 9, 14, 19]
    assert stop.first_crossing.iteration == 9 and stop.confirmed_at.iteration == 19
    screen, confirm = (256, 10_000), (1024, 510_000)
    assert stop.flown == [screen, screen, confirm, screen, confirm, screen, confirm]
    s = stop.summary()
    assert s["first_crossing"]["iterations"] == 10 and s["first_crossing"]["confirm_success"] == 0.94
    assert s["confirmed"]["iterations"] == 20 and s["confirmed"]["confirm_crash"] == 0.002
    assert s["confirmations"] == 3 and s["pid_confirm_crash"] == 0.003


def test_a_crash_rate_equal_to_the_baseline_passes_and_one_above_fails():
    stop = Scripted([], [], pid_crash=0.004)
    assert stop.passes({"success_rate": 0.95, "crash_rate": 0.004})
    assert not stop.passes({"success_rate": 0.95, "crash_rate": 0.0041})
    assert not stop.passes({"success_rate": 0.949, "crash_rate": 0.0})
    lenient = Scripted([], [], pid_crash=0.0, crash_vs_baseline=False)
    assert lenient.passes({"success_rate": 0.95, "crash_rate": 0.05})


def test_no_screening_before_the_curriculum_covers_the_whole_task():
    stop = Scripted(screen=[(0.99, 0.0)], confirm=[(0.99, 0.0)], pid_crash=0.01)
    assert stop(_stats(4, level=0.8), None) is False and stop.flown == []
    assert stop(_stats(9, level=1.0), None) is True and stop.confirmed_at.iteration == 9


def test_first_crossing_only_stops_at_the_crossing_even_when_unconfirmed():
    stop = Scripted(screen=[(0.96, 0.0)], confirm=[(0.90, 0.1)], pid_crash=0.0, until_confirmed=False)
    assert stop(_stats(4), None) is True
    assert stop.first_crossing.iteration == 4 and stop.confirmed_at is None


def test_the_baseline_flies_the_confirmation_episodes_once():
    episodes = 64
    stop = ConfirmedStop("quadrotor-hover", QuadrotorTaskCfg(), StopCfg(confirm_episodes=episodes, episode_s=1.0))
    first = stop.baseline_metrics()
    assert first["envs"] == episodes and 0.0 <= first["crash_rate"] <= 1.0
    assert stop.baseline_metrics() is first  # cached: one flight per run
    again = ConfirmedStop("quadrotor-hover", QuadrotorTaskCfg(), StopCfg(confirm_episodes=episodes, episode_s=1.0))
    assert again.baseline_metrics() == first  # same seed: the same episodes


def test_a_budget_stops_training_without_a_confirmed_policy():
    stop = Scripted(screen=[(0.90, 0.0)] * 3, confirm=[], pid_crash=0.0, budget_s=0.0)
    assert stop(_stats(0), None) is True and stop.out_of_budget and stop.confirmed_at is None
    patient = Scripted(screen=[(0.90, 0.0)] * 3, confirm=[], pid_crash=0.0, budget_s=3600.0)
    assert not any(patient(_stats(it), None) for it in range(15)) and not patient.out_of_budget


def test_screenings_thin_out_while_the_policy_is_far_from_the_target():
    stop = Scripted(
        screen=[(0.2, 0.1), (0.6, 0.0), (0.7, 0.0), (0.3, 0.0)], confirm=[], pid_crash=0.0, every_when_far=20
    )
    for it in range(54):  # the next screening would be after iteration 54
        stop(_stats(it), None)
    # 4: far (20 %) -> next at 25 (not 9..24); 24: 60 % -> every 5; 29: 70 %; 34: far (30 %) -> next at 55
    assert [ev.iteration for ev in stop.history] == [4, 24, 29, 34]


class Clocked(Scripted):
    """Confirmations take ``confirm_s`` seconds of a fake wall clock; screenings take none."""

    def __init__(self, *args, confirm_s: float, **cfg):
        super().__init__(*args, **cfg)
        self.now, self.confirm_s = 0.0, confirm_s
        self.clock = lambda: self.now

    screen_s = 0.0

    def evaluate(self, runner, episodes, seed):
        self.now += self.confirm_s if episodes == self.cfg.confirm_episodes else self.screen_s
        return super().evaluate(runner, episodes, seed)


def test_after_a_failed_confirmation_training_runs_as_long_as_it_took_before_the_next_screening():
    # training clock: 0.1 s per iteration (_stats); a confirmation takes 1.2 s -> 12 iterations of training
    stop = Clocked(
        screen=[(0.96, 0.0)] * 4,
        confirm=[(0.96, 0.01), (0.96, 0.0)],
        pid_crash=0.005,
        confirm_s=1.2,
        confirm_backoff=1.0,
    )
    decisions = [stop(_stats(it), None) for it in range(20)]
    # 4: screened, confirmation fails (crash 1 % > 0.5 %) at train time 0.5 s -> no screening before 0.5 + 1.2 s,
    # i.e. before iteration 16 (wall 1.7 s); the first one after is 19, whose confirmation passes
    assert [ev.iteration for ev in stop.history] == [4, 19]
    assert decisions.index(True) == 19 and stop.confirmed_at.iteration == 19
    eager = Clocked(screen=[(0.96, 0.0)] * 4, confirm=[(0.96, 0.01), (0.96, 0.0)], pid_crash=0.005, confirm_s=1.2)
    assert [eager(_stats(it), None) for it in range(10)][-1] is True  # without back-off: screened again at 9


def test_screenings_back_off_by_their_own_duration():
    # training clock: 0.1 s per iteration (_stats); a screening takes 0.5 s -> 3 x 0.5 = 1.5 s (15 iterations) of
    # training before the next
    stop = Clocked(screen=[(0.5, 0.0)] * 5, confirm=[], pid_crash=0.0, confirm_s=0.0, screen_backoff=3.0)
    stop.screen_s = 0.5
    for it in range(40):
        stop(_stats(it), None)
    # 4 (wall 0.5 s) -> not before wall 2.0 s (it 19); 19 -> not before 3.5 s (it 34); 34
    assert [ev.iteration for ev in stop.history] == [4, 19, 34]
