"""Articulated-robot tasks: arm-reach, legged-walk; their registrations (``sim.registry``).

One registration per task class. A robot of one of these classes is data, not a registration: its profile
``launch/robots/<name>.yaml`` and its variant ``launch/tasks/<task>/<name>.yaml`` (docs/adding_a_robot.md).
Entry points are strings: importing this package does not import torch or the task modules.
"""

from __future__ import annotations

from sim.registry import TaskRegistration, register

register(
    TaskRegistration(
        name="arm-reach",
        cfg="sim.articulated.tasks.arm_reach:ArmReachCfg",
        env="sim.articulated.tasks.arm_reach:ArmReachEnv",
        robot_class="arm",
        default_robot="franka",
        description="arm (Franka Panda by default): reach random end-effector poses with joint targets",
        metrics="reaching",
        train_cfg="policies.train_cfg:arm_reach",
    )
)

register(
    TaskRegistration(
        name="legged-walk",
        cfg="sim.articulated.tasks.legged_walk:LeggedWalkCfg",
        env="sim.articulated.tasks.legged_walk:LeggedWalkEnv",
        robot_class="legged",
        default_robot="a1",
        description="quadruped (Unitree A1 by default): track commanded base velocity on flat ground",
        metrics="velocity_tracking",
        train_cfg="policies.train_cfg:legged_walk",
    )
)
