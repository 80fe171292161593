"""Party-alliance organisation: alliances, clusters, members, task lists, activity."""
