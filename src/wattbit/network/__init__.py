"""wattbit.network"""
