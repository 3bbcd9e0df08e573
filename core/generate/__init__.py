"""Step 1.5: prompt sets, synthetic generation, LoRA comparisons and the synthetic report."""
