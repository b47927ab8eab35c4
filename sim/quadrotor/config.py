"""Typed task configs for the quadrotor tasks. Every field carries its unit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sim.obs_spec import ObsSpec, ObsTerm, with_history
from sim.quadrotor.hover import HOVER
from sim.quadrotor.params import QuadrotorParams
from sim.quadrotor.task import QuadrotorTask
from sim.quadrotor.track import TRACK
from sim.randomization import ParamDistribution, RandomizationSpec

#: The quadrotor tasks by name (``QuadrotorTaskCfg.task``); one file each.
TASKS: dict[str, QuadrotorTask] = {t.name: t for t in (HOVER, TRACK)}


def base_randomization() -> RandomizationSpec:
    """Crazyflie 2.x randomization of the ideal vehicle (no imperfections), wide enough to cover the spread between
    sources (FACTS.md). :func:`default_randomization` is this plus the vehicle's imperfections; this one is what the
    classical PID baseline and the simulated autopilots' vehicles fly (docs/quadrotor_model.md says why).

    mass x[0.9, 1.2] covers 0.027-0.0319 kg (bare to with decks); inertia x[0.7, 1.4] covers both system-
    identified values (1.4e-5 gym-pybullet-drones, 1.657e-5 Foerster) with margin; learning-to-fly's 3.85e-6
    is 4x below both and is not covered by default (widen ``inertia`` in a spec file to train for it). km
    x[0.23, 1.2] covers the torque/thrust ratios 0.006 and 0.0251 m; motor rise 0.0125-0.112 s and fall
    0.026-0.255 s cover 12.5 ms (CrazyS) to 0.249 s (RLtools). kf x[0.85, 1.1]: with the mass range, the hover
    thrust reaches mass / kf = 1.41 x the profile's, which covers RotorPy's Crazyflie (rotorpy.vehicles.crazyflie_params:
    0.03 kg, k_eta 2.3e-8 N/(rad/s)^2 = 2.52e-10 N/RPM^2: 1.39 x), and thrust-to-weight stays in [1.6, 2.75];
    Foerster's 1.41e-10 N/RPM^2 belongs to a different RPM range (at this profile's max RPM it could not hover), so
    it is covered through thrust-to-weight, not kf itself. Latencies in control steps of 10 ms.
    """
    d = ParamDistribution
    return RandomizationSpec(
        {
            "mass": d("uniform", low=0.9, high=1.2),
            "inertia": d("log_uniform", low=0.7, high=1.4),
            "kf": d("uniform", low=0.85, high=1.1),
            "km": d("uniform", low=0.23, high=1.2),
            "motor_tau_up": d("log_uniform", low=0.22, high=2.0),
            "motor_tau_down": d("log_uniform", low=0.17, high=1.7),
            "drag": d("uniform", low=0.5, high=2.0),
            "action_latency": d("int_uniform", low=0, high=1, operation="absolute", unit="control steps"),
            "obs_latency": d("int_uniform", low=0, high=1, operation="absolute", unit="control steps"),
            "obs_noise_scale": d("uniform", low=0.5, high=1.5),
            "disturbance_force": d(
                "normal", mean=0.0, std=0.002, low=-0.008, high=0.008, operation="absolute", when="interval",
                interval_s=2.0, per_component=True, unit="N",
            ),
            "disturbance_torque": d(
                "normal", mean=0.0, std=2e-6, low=-8e-6, high=8e-6, operation="absolute", when="interval",
                interval_s=2.0, per_component=True, unit="N m",
            ),
        },
        name="crazyflie2-base",
    )  # fmt: skip


def default_randomization() -> RandomizationSpec:
    """:func:`base_randomization` plus the vehicle's imperfections (sim.quadrotor.dynamics.Imperfections;
    docs/quadrotor_model.md gives each law, range and source). What ``sim2real train quadrotor-hover`` trains for
    and the SIL vehicle is drawn from; ``launch/randomization/crazyflie2_base.yaml`` (written by
    ``python -m sim.quadrotor.config``) is the ideal vehicle.

    - thrust_curve c in [-0.15, 0.05]: drone-models' Crazyflie fits (rpm2thrust, linear over quadratic term)
      give c = -0.03 (cf21B_500) to -0.13 (cf2x_T350); Foerster's PWM fit through the firmware's PWM->RPM map
      gives +0.01.
    - battery_sag in [0, 0.08] of the commanded rotor speed: Bitcraze's thrust table (wiki, "PWM to thrust")
      shows the supply falling from 4.01 V idle to 3.67 V at 56 % PWM (8.5 %); the firmware's battery
      compensation (on by default) takes most of it out, a worn or cold cell does not.
    - ground_effect in [0, 0.0122] m^2: twice gym-pybullet-drones' cf2x (coefficient 11.36859 x propeller radius
      0.0231348 m squared = 0.0061 m^2).
    - action_latency_substeps 0-4 physics steps of 2 ms: the latency between whole control steps (chosen: with
      action_latency 0-1 it spans 0-18 ms continuously instead of 0 or 10 ms).
    - motor_kf_scale x[0.95, 1.05], motor_tau_scale x[0.9, 1.1] per rotor, com_offset +-1 mm per axis: chosen (no
      published per-rotor spread or CoM offset of a Crazyflie was found); issue #18's unmodelled vehicle had ~1 mm
      (an offset torque ~30x the disturbance bound at hover).
    """
    d = ParamDistribution
    return RandomizationSpec(
        {
            **base_randomization().terms,
            "motor_kf_scale": d("uniform", low=0.95, high=1.05, per_component=True),
            "motor_tau_scale": d("uniform", low=0.9, high=1.1, per_component=True),
            "thrust_curve": d("uniform", low=-0.15, high=0.05, operation="absolute"),
            "battery_sag": d("uniform", low=0.0, high=0.08, operation="absolute"),
            "ground_effect": d("uniform", low=0.0, high=0.0122, operation="absolute", unit="m^2"),
            "com_offset": d("uniform", low=-0.001, high=0.001, operation="absolute", per_component=True, unit="m"),
            SUBSTEP_LATENCY: d("int_uniform", low=0, high=4, operation="absolute", unit="physics steps"),
        },
        name="crazyflie2-default",
    )  # fmt: skip


#: Parameters whose randomized values must stay > 0 (a mass scale of 0 gave NaN critics and 100 % crashes; a
#: motor time constant <= 0 has no meaning) and those that may be 0 but not below (rotor drag, noise stds: the
#: ``obs_noise.<term>`` parameters too). Latencies (control steps) must be >= 0 and shorter than an episode.
POSITIVE_PARAMS = ("mass", "inertia", "kf", "km", "motor_tau_up", "motor_tau_down", "max_rpm")
POSITIVE_PARAMS += ("motor_kf_scale", "motor_tau_scale")
NONNEGATIVE_PARAMS = ("drag", "obs_noise_scale", "ground_effect")
#: Parameters with a bounded range: a sag of 100 % stops the rotors; a thrust curve beyond +-1 is not a curve
#: of this family (sim.quadrotor.dynamics.Imperfections).
BOUNDED_PARAMS = {"battery_sag": (0.0, 0.9), "thrust_curve": (-1.0, 1.0)}
LATENCY_PARAMS = ("action_latency", "obs_latency")
#: Physics substeps (0 .. physics_substeps - 1) at the start of each control step during which the previous command
#: still drives the motors: latency between whole control steps (with action_latency, 0 to 18 ms by default).
SUBSTEP_LATENCY = "action_latency_substeps"
#: The vehicle's imperfections (sim.quadrotor.dynamics.Imperfections): what :func:`default_randomization` adds to
#: :func:`base_randomization`; without them a parameter is the ideal model's.
IMPERFECTIONS = ("motor_kf_scale", "motor_tau_scale", "thrust_curve", "battery_sag", "ground_effect", "com_offset")
IMPERFECTIONS += (SUBSTEP_LATENCY,)


def ideal_vehicle(spec: RandomizationSpec) -> RandomizationSpec:
    """``spec`` without the vehicle's imperfections: the same draws of everything else, on the ideal vehicle (what
    the PID baseline is measured on; it cannot hold the imperfect one at 100 Hz, docs/quadrotor_model.md)."""
    terms = {k: v for k, v in spec.terms.items() if k not in IMPERFECTIONS}
    return RandomizationSpec(terms, name=f"{spec.name} (ideal vehicle)" if spec.name else "ideal vehicle")


@dataclass
class InitCfg:
    """Initial-state ranges around the reference (uniform; the tilt axis is uniform on the sphere)."""

    position_m: float = 0.5  # per axis
    velocity_m_s: float = 0.5  # per axis
    tilt_rad: float = 0.6  # max angle from upright; pi gives any attitude (tumbling)
    angular_velocity_rad_s: float = 2.0  # per axis


@dataclass
class TerminationCfg:
    position_m: float = 2.0  # max distance from the reference per axis
    speed_m_s: float = 10.0
    angular_velocity_rad_s: float = 35.0  # ~2000 deg/s, the gyro range
    floor_m: float = 0.0  # world z of the ground
    reference_height_m: float = 1.0  # world z of the hover point / trajectory centre


def _weight(term: str) -> property:
    def get(self: RewardCfg) -> float:
        if term not in self.terms:
            raise AttributeError(f"the reward has no {term!r} term; its terms: {list(self.terms)} (set reward.terms)")
        return self.terms[term]

    def set(self: RewardCfg, value: float) -> None:
        get(self)  # only the weight of a listed term: adding a term is a change of reward.terms
        self.terms[term] = value

    return property(get, set, doc=f"weight of the {term!r} term (reward.terms[{term!r}])")


@dataclass
class RewardCfg:
    """reward = alive * exp(-sum(weight * term)) per control step (never below 0: living beats crashing);
    a crash gives -termination instead.

    terms: penalty term -> weight (per unit of the term), summed in this order; names of
    ``sim.quadrotor.rewards.PENALTY_TERMS``. Left empty, ``QuadrotorTaskCfg`` fills in its task's declared list
    (``hover.py``, ``track.py``). The weights of the declared terms are attributes too (``reward.position``,
    ``--set env.reward.position=4``). On CPU the native kernel runs only the terms it implements
    (``sim.quadrotor.native.KERNEL_REWARD_TERMS``, any weights); another list runs on the torch step.
    """

    alive: float = 1.0
    termination: float = 20.0
    terms: dict[str, float] = field(default_factory=dict)

    position = _weight("position")
    velocity = _weight("velocity")
    angular_velocity = _weight("angular_velocity")
    tilt = _weight("tilt")
    action = _weight("action")
    action_rate = _weight("action_rate")


@dataclass
class TrajectoryCfg:
    """Track task references: figure-eight (lemniscate of Gerono) or a random smooth sum of sinusoids."""

    figure_eight_fraction: float = 0.5
    figure_eight_amplitude_m: tuple[float, float] = (0.3, 1.0)
    figure_eight_period_s: tuple[float, float] = (4.0, 8.0)
    random_amplitude_m: tuple[float, float] = (0.0, 0.5)  # per axis and component
    random_period_s: tuple[float, float] = (3.0, 10.0)


@dataclass
class QuadrotorTaskCfg:
    task: str = "hover"  # a name of TASKS: "hover" | "track"
    action_interface: str = "rpm"  # "rpm" | "ctbr"
    control_hz: float = 100.0
    physics_substeps: int = 5  # physics at control_hz * physics_substeps
    episode_s: float = 5.0
    max_body_rate_rad_s: float = 12.0  # ctbr setpoint range
    # The actor also observes the integral of its position error: without it a memoryless policy hovers with a
    # steady offset under randomized mass and thrust (measured: 5.5 cm median in z), as a PD controller would.
    integral_observation: bool = True
    # ... and its previous observations: with 3, a policy tells slow motors and a delayed loop from fast ones and
    # stops oscillating on them (measured: success 93.1 -> 97.6 %, docs/training.md "Observation history").
    observation_history: int = 3  # previous control steps appended to the policy observation
    rate_gains: tuple[float, float, float] = (20.0, 20.0, 10.0)  # 1/s, ctbr rate loop
    params: QuadrotorParams = field(default_factory=QuadrotorParams)
    randomization: RandomizationSpec = field(default_factory=default_randomization)
    init: InitCfg = field(default_factory=InitCfg)
    termination: TerminationCfg = field(default_factory=TerminationCfg)
    reward: RewardCfg = field(default_factory=RewardCfg)
    trajectory: TrajectoryCfg = field(default_factory=TrajectoryCfg)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown quadrotor task {self.task!r}; expected one of {sorted(TASKS)}")
        if not self.reward.terms:
            self.reward.terms = dict(self.task_def.reward)

    @property
    def task_def(self) -> QuadrotorTask:
        """The task's declaration (reward terms, reference kind, added observations)."""
        return TASKS[self.task]

    @property
    def control_dt(self) -> float:
        return 1.0 / self.control_hz

    @property
    def physics_dt(self) -> float:
        return 1.0 / (self.control_hz * self.physics_substeps)

    @property
    def max_episode_length(self) -> int:
        return round(self.episode_s * self.control_hz)

    def check_randomization(self, nominal: Mapping[str, Sequence[float]]) -> None:
        """Refuse a randomization spec this task cannot fly: parameters it does not have, and draws no quadrotor
        can have (:data:`POSITIVE_PARAMS` reaching 0, :data:`NONNEGATIVE_PARAMS` and noise stds below 0, latencies
        below 0 or as long as an episode). ``nominal``: parameter -> nominal values (``sim.quadrotor.env.
        nominal_values``). Cheap, no simulator: training calls it before it creates a run directory.
        Raises :class:`~sim.randomization.RandomizationSpecError`."""
        spec = self.randomization
        spec.check_params(frozenset(nominal))
        noise = tuple(k for k in nominal if k.startswith("obs_noise."))
        spec.check_physical(
            nominal,
            positive=POSITIVE_PARAMS,
            nonnegative=NONNEGATIVE_PARAMS + noise,
            max_steps=dict.fromkeys(LATENCY_PARAMS, self.max_episode_length),
            within={**BOUNDED_PARAMS, SUBSTEP_LATENCY: (0.0, self.physics_substeps - 1.0)},
        )

    def policy_obs_spec(self) -> ObsSpec:
        """The actor's observation: :meth:`base_obs_spec`, then its ``observation_history`` previous values."""
        return with_history(self.base_obs_spec(), self.observation_history)

    def base_obs_spec(self) -> ObsSpec:
        """What a real Crazyflie measures: state estimate, attitude, gyro, and its own last action."""
        terms = [
            ObsTerm("position_error", 3, 1.0, 0.002, "m", "estimated position minus reference, world frame"),
            ObsTerm("rotation_matrix", 9, 1.0, 0.002, "", "attitude estimate, body->world, row-major"),
            ObsTerm("linear_velocity", 3, 1.0, 0.005, "m/s", "velocity estimate, world frame"),
            ObsTerm("angular_velocity", 3, 0.1, 0.005, "rad/s", "gyro, body frame"),
        ]
        terms.extend(self.task_def.observations)
        terms.append(ObsTerm("last_action", 4, 1.0, 0.0, "", "previous normalized action"))
        if self.integral_observation:
            terms.append(
                ObsTerm(
                    "position_error_integral", 3, 1.0, 0.0, "m s",
                    "integral of the observed position error since the start (arming), clamped (sim.obs_terms)",
                )
            )  # fmt: skip
        return ObsSpec(tuple(terms))

    def critic_obs_spec(self) -> ObsSpec:
        """Privileged dynamic state: true state and rotor speeds (changes every step)."""
        return ObsSpec(
            (
                ObsTerm("true_position_error", 3, 1.0, 0.0, "m"),
                ObsTerm("true_rotation_matrix", 9),
                ObsTerm("true_linear_velocity", 3, 1.0, 0.0, "m/s"),
                ObsTerm("true_angular_velocity", 3, 0.1, 0.0, "rad/s"),
                ObsTerm("rotor_speed", 4, 1.0, 0.0, "", "rotor RPM / nominal max RPM"),
            )
        )

    def privileged_obs_spec(self) -> ObsSpec:
        """Privileged parameters: the randomized truth and current disturbance (changes when re-drawn)."""
        return ObsSpec(
            (
                ObsTerm(
                    "param_ratios", 8, 1.0, 0.0, "", "randomized / nominal: mass, inertia xyz, kf, km, tau up, tau down"
                ),
                ObsTerm("latency", 2, 1.0, 0.0, "control steps", "action, observation"),
                ObsTerm("disturbance", 6, 1.0, 0.0, "", "force / weight (3), torque / 1e-4 N m (3)"),
            )
        )


if __name__ == "__main__":  # writes launch/randomization/crazyflie2_base.yaml
    from pathlib import Path

    out = Path(__file__).resolve().parents[2] / "launch" / "randomization" / "crazyflie2_base.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    base_randomization().to_yaml(out)
    print(out)
