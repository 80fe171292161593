"""The finance domain: catalogue (products, schemes, fund), loans and pledges, collective income
and its distribution. Plain aggregates: commands check invariants and trigger events."""

from services.finance.domain.catalog import GuarantorProfile, LoanProduct, RiskFund, RiskScheme
from services.finance.domain.collective import (
    CollectiveEntry,
    DistributionPlan,
    DistributionPolicy,
    EquityRegister,
)
from services.finance.domain.loans import ContractPledge, LandContract, Loan

__all__ = [
    "CollectiveEntry",
    "ContractPledge",
    "DistributionPlan",
    "DistributionPolicy",
    "EquityRegister",
    "GuarantorProfile",
    "LandContract",
    "Loan",
    "LoanProduct",
    "RiskFund",
    "RiskScheme",
]
